"""The distribution: envs/ and agents/ install under rlsuite., every package is in the wheel,
and ids register from a fresh interpreter (also through gymnasium's "module:" prefix)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {"rlsuite": "rlsuite", "envs": "rlsuite/envs", "agents": "rlsuite/agents"}


def package_folders() -> set[str]:
    """Every folder with an __init__.py under rlsuite/, envs/ and agents/, as wheel paths."""
    found = set()
    for top, installed in MAPPED.items():
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(ROOT / top).as_posix()
            found.add(installed if relative == "." else f"{installed}/{relative}")
    return found


def test_wheel_contains_every_package_and_no_top_level_envs_or_agents(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = tmp_path.glob("rlsuite-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {name.rsplit("/", 1)[0] for name in names if name.endswith("/__init__.py")}
    missing = package_folders() - in_wheel
    assert not missing, (
        f"packages missing from the wheel (add them to pyproject.toml): {sorted(missing)}"
    )
    tops = {name.split("/", 1)[0] for name in names if "/" in name and ".dist-info" not in name}
    assert tops == {"rlsuite"}, f"the wheel installs top-level packages {sorted(tops)}"
    assert "rlsuite/py.typed" in names


def test_ids_register_in_a_fresh_interpreter_and_subprocesses() -> None:
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('rlsuite:rlsuite/SOR-ShiftedLaplacian-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "assert 'envs' not in sys.modules and 'agents' not in sys.modules\n"
        "print(obs.shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/"
    )
    assert out.stdout.strip() == "(4,)"


def test_every_registered_id_has_both_entry_points() -> None:
    import gymnasium as gym

    import rlsuite

    for env_id in rlsuite.ENVS:
        spec = gym.spec(env_id)
        assert spec.entry_point and spec.vector_entry_point, env_id
