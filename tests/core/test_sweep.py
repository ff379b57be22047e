"""``rlsuite sweep``: grid parsing, and (``-m ray``) sweeps on an embedded Ray instance.

The Ray tests share one small local Ray instance (2 CPUs) and use tiny budgets of
``configs/sor/tsallis_inf.yaml``; a trial is made to crash with the fault-injection file
``OUT/<slug>/seed<k>.crash-after-checkpoint`` (see :data:`rlsuite.sweep.FAULT_SUFFIX`).

The cluster test starts a real two-node cluster with ``ray start`` (a head and a worker, one CPU
each, on this machine) and runs the sweep as a separate driver process. Both nodes and the
driver run with ``RAY_AUTH_MODE=disabled``: token authentication (on by default in Ray 2.60) is
a deployment matter, and a fresh machine has no token to share between the processes.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlsuite.cli import main
from rlsuite.config import ConfigError
from rlsuite.sweep import FAULT_SUFFIX, expand_grid, parse_grid, point_slug, prepare_sweep

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "sor" / "tsallis_inf.yaml")
TINY = [
    "train.total_steps=40",
    "train.checkpoint_every=20",
    "train.log_every=10",
    "env.kwargs.n=6",
    "eval.episodes=2",
    "eval.baselines=[]",
]
LR = "agent.params.learning_rate_scale"


# -- without Ray -----------------------------------------------------------------------------------


def test_grid_parsing_and_expansion() -> None:
    grid = parse_grid([f"{LR}=0.5,1e-1,2", "env.kwargs.variance=low,high", "x.y=[1, 2],null"])
    assert grid == [
        (LR, [0.5, 0.1, 2]),
        ("env.kwargs.variance", ["low", "high"]),
        ("x.y", [[1, 2], None]),
    ]
    points = expand_grid(grid[:2])
    assert len(points) == 6
    assert points[0] == {LR: 0.5, "env.kwargs.variance": "low"}
    assert points[1] == {LR: 0.5, "env.kwargs.variance": "high"}  # the last key varies fastest
    assert expand_grid([]) == [{}]
    assert point_slug(points[1]) == f"{LR}=0.5__env.kwargs.variance=high"
    assert point_slug({}) == "base"
    assert point_slug({"a.b": [1, 2]}) == "a.b=_1_2_"
    for bad, message in [
        ("lr", "expected 'dotted.key=v1,v2"),
        ("a..b=1", "is not a dotted key"),
        ("train.seed=1,2", "--seeds"),
        ("a.b=1,,2", "empty value"),
        ("a.b=1,1", "repeated values"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_grid([bad])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["a.b=1", "a.b=2"])


def test_bad_grid_key_is_named_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"agent\.params\.learning_rat: unknown key.*did you mean"
    ):
        prepare_sweep(CONFIG, ["agent.params.learning_rat=1,2"], 2, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"train\.total_steps: expected int, got 'many'"):
        prepare_sweep(CONFIG, ["train.total_steps=100,many"], 1, tmp_path / "out")
    with pytest.raises(ConfigError, match="--seeds"):
        prepare_sweep(CONFIG, [], 0, tmp_path / "out")
    spec = prepare_sweep(CONFIG, [f"{LR}=0.5,2"], 3, tmp_path / "out", TINY)
    assert spec.slugs == [f"{LR}=0.5", f"{LR}=2"]
    assert spec.trial_config(spec.points[1], 2).agent.params == {"learning_rate_scale": 2}
    assert spec.trial_config(spec.points[1], 2).train.seed == 2
    assert not (tmp_path / "out").exists()


def test_sweep_without_ray_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("ray") is not None:
        pytest.skip("ray is installed; this checks the message without it")
    out = tmp_path / "out"
    assert main(["sweep", CONFIG, "--grid", f"{LR}=1,2", "--out", str(out)]) == 2
    assert "pip install 'rlsuite[ray]'" in capsys.readouterr().err
    assert not out.exists()


# -- with Ray --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _attempts(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for line in (out / "trials.jsonl").read_text().splitlines():
        row = json.loads(line)
        found.setdefault(row["trial"], []).append(row)
    return found


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.ray
def test_sweep_grid_times_seeds(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    args = ["sweep", CONFIG, "--grid", f"{LR}=0.5,2", "--seeds", "2", "--out", str(out)]
    assert main([*args, *(f"--set={o}" for o in TINY)]) == 0
    printed = capsys.readouterr().out
    assert "eval return" in printed and "2/2" in printed

    with open(out / "sweep.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r[LR] for r in rows] == ["0.5", "2"]
    assert all(r["seeds_done"] == "2" for r in rows)
    summary = json.loads((out / "sweep.json").read_text())
    assert len(summary["rows"]) == 2 and len(summary["trials"]) == 4
    for row, trial_rows in zip(rows, [summary["trials"][:2], summary["trials"][2:]], strict=True):
        returns = [t["eval_return"] for t in trial_rows]
        assert float(row["eval_return_mean"]) == pytest.approx(sum(returns) / 2)
        assert float(row["eval_return_ci95_low"]) <= float(row["eval_return_mean"])
    for slug in (f"{LR}=0.5", f"{LR}=2"):
        for seed in (0, 1):
            run = out / slug / f"seed{seed}"
            assert (run / "checkpoints" / "latest").is_file()
            assert (run / "eval" / "results.json").is_file()
            assert _steps(run) == [10, 20, 30, 40]
            config = (run / "config.yaml").read_text()
            assert f"seed: {seed}" in config and "learning_rate_scale" in config
    # a second sweep into the same --out is refused (it would mix two sweeps)
    assert main([*args, *(f"--set={o}" for o in TINY)]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.ray
def test_failed_trial_is_retried_from_its_checkpoint(ray_local: None, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from rlsuite.sweep import run_sweep

    out = tmp_path / "sweep"
    (out / "base").mkdir(parents=True)
    fault = out / "base" / f"seed0{FAULT_SUFFIX}"
    fault.write_text("once\n")
    outcome = run_sweep(CONFIG, [], 1, out=out, overrides=TINY, max_failures=2, verbose=0)
    assert outcome.unfinished == 0 and not fault.exists()
    attempts = _attempts(out)["base/seed0"]
    assert [a["start_step"] for a in attempts] == [0, 20]  # the retry resumed the checkpoint
    run = out / "base" / "seed0"
    assert _steps(run) == [10, 20, 30, 40]  # continued: no step logged twice, none missing
    result = json.loads((run / "sweep_result.json").read_text())
    assert result["attempts"] == 2 and result["steps"] == 40


@pytest.mark.ray
def test_resume_an_interrupted_sweep(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    from rlsuite.sweep import run_sweep

    out = tmp_path / "sweep"
    (out / "base").mkdir(parents=True)
    fault = out / "base" / f"seed1{FAULT_SUFFIX}"
    fault.write_text("always\n")
    first = run_sweep(CONFIG, [], 2, out=out, overrides=TINY, max_failures=0, verbose=0)
    assert first.unfinished == 1 and first.rows[0].seeds_done == 1
    done = out / "base" / "seed0" / "sweep_result.json"
    stamp = done.stat().st_mtime_ns

    fault.unlink()
    assert main(["sweep", "--out", str(out), "--resume", "--seeds", "3"]) == 2  # not this sweep
    assert "--seeds 3 differs" in capsys.readouterr().err
    assert main(["sweep", "--out", str(out), "--resume"]) == 0
    assert "2/2" in capsys.readouterr().out
    attempts = _attempts(out)
    assert len(attempts["base/seed0"]) == 1  # finished before: not rerun
    assert done.stat().st_mtime_ns == stamp
    assert [a["start_step"] for a in attempts["base/seed1"]] == [0, 20]
    assert _steps(out / "base" / "seed1") == [10, 20, 30, 40]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["rows"][0]["seeds_done"] == 2


# -- on a cluster -----------------------------------------------------------------------------------

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    probe = "import ray; ray.init(address=%r); print(sum(n['Alive'] for n in ray.nodes()))"
    done = subprocess.run(
        [sys.executable, "-c", probe % address], env=env, capture_output=True, text=True, timeout=60
    )
    return int(done.stdout.split()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    pytest.importorskip("ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    address = f"127.0.0.1:{_free_port()}"
    # its own temp dir: `ray start --head` records its address there (ray_current_cluster), where
    # a later plain ray.init() in another test would otherwise find it and try to connect
    temp_dir = tempfile.mkdtemp(prefix="rlsuite-ray-", dir="/tmp")  # short: unix socket paths
    common = ["--num-cpus=1", "--disable-usage-stats", "--block", f"--temp-dir={temp_dir}"]
    nodes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    try:
        for i, role in enumerate(
            (
                ["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false"],
                [f"--address={address}"],
            )
        ):
            logs.append(open(tmp_path / f"node{i}.log", "wb"))
            log = logs[-1]
            nodes.append(
                subprocess.Popen(
                    [str(BIN / "ray"), "start", *role, *common],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            deadline = time.monotonic() + 90
            while _alive_nodes(address, env) < i + 1:
                if time.monotonic() > deadline or nodes[-1].poll() is not None:
                    pytest.fail(
                        f"ray node {i} did not start: {(tmp_path / f'node{i}.log').read_text()}"
                    )
                time.sleep(1)
        yield address, env
    finally:
        for node in reversed(nodes):  # each `ray start --block` stops its node's processes
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(timeout=60)
        for log in logs:
            log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.ray
def test_sweep_runs_its_trials_on_both_nodes(
    cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = cluster
    out = tmp_path / "sweep"
    args = ["sweep", CONFIG, "--grid", "agent.params.learning_rate_scale=0.5,2", "--seeds", "2"]
    args += ["--address", address, "--out", str(out), *(f"--set={o}" for o in TINY)]
    done = subprocess.run(
        [str(BIN / "rlsuite"), *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(row["attempt"] == 1 for row in rows)
    assert len({row["node"] for row in rows}) == 2  # one CPU per node: both took trials
    summary = json.loads((out / "sweep.json").read_text())
    assert [row["seeds_done"] for row in summary["rows"]] == [2, 2]
    for trial in summary["trials"]:
        assert Path(trial["run_dir"], "eval", "results.json").is_file()


def test_a_failed_connection_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster that refuses the driver (e.g. Ray 2.60's token authentication) is a one-line
    error naming the fix, before OUT exists (a rerun is then not "already holds a sweep")."""
    import importlib.machinery
    import types

    def refuse(**kwargs: Any) -> None:
        raise ConnectionError("InvalidAuthToken: the token is missing\nretrying ...")

    ray = types.ModuleType("ray")
    ray.__spec__ = importlib.machinery.ModuleSpec("ray", None)
    ray.is_initialized = lambda: False  # type: ignore[attr-defined]
    ray.init = refuse  # type: ignore[attr-defined]
    tune = types.ModuleType("ray.tune")
    tune.__spec__ = importlib.machinery.ModuleSpec("ray.tune", None)
    ray.tune = tune  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setitem(sys.modules, "ray.tune", tune)
    out = tmp_path / "out"
    args = ["sweep", CONFIG, "--grid", f"{LR}=1,2", "--out", str(out), "--address", "10.1.2.3:6379"]
    err = _run_capturing_stderr(args)
    assert "cannot connect to Ray at 10.1.2.3:6379" in err and "RAY_AUTH_MODE=token" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def _run_capturing_stderr(args: list[str]) -> str:
    import contextlib
    import io

    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
        assert main(args) == 2
    return stream.getvalue()


@pytest.mark.ray
def test_a_sweep_set_up_but_never_started_resumes(ray_local: None, tmp_path: Path) -> None:
    """OUT holds sweep.yaml but no Tune experiment (the driver died before the trials began):
    --resume starts the trials instead of saying there is nothing to restore."""
    from rlsuite.sweep import SPEC_FILE, run_sweep, yaml_dump

    out = tmp_path / "sweep"
    spec = prepare_sweep(CONFIG, [], 1, out, TINY)
    out.mkdir(parents=True)
    (out / SPEC_FILE).write_text(yaml_dump(spec.to_dict()), encoding="utf-8")
    outcome = run_sweep(None, out=out, resume=True, verbose=0)
    assert outcome.unfinished == 0 and outcome.rows[0].seeds_done == 1
