"""Users' own environments and agents: any gymnasium id on the command line, and envs and
agents that an installed package declares as entry points (the README's examples as a plugin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from rlsuite.agents.base import Agent

from rlsuite.registry import AGENTS, register_agent

README = Path(__file__).resolve().parents[2] / "README.md"
USE_MARKER = "# --- use it in this process"


def readme_definitions(marker: str) -> str:
    """The definitions of the README's python block after ``marker`` (up to its usage part)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    opening = next(i for i in range(start, len(lines)) if lines[i].strip() == "```python")
    end = next(i for i in range(opening, len(lines)) if lines[i].startswith(USE_MARKER))
    return "\n".join(lines[opening + 1 : end])


def install_plugin(root: Path) -> dict[str, str]:
    """A package ``rlsuite_demo_plugin`` with the README's env and agent, and its distribution
    metadata with the entry points, on a path of its own; the environment to run it with."""
    package = root / "rlsuite_demo_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""rlsuite plugin demo."""\n')
    (package / "guess.py").write_text(readme_definitions("**Write your own agent.**") + "\n")
    (package / "registry.py").write_text(
        textwrap.dedent(
            """
            from rlsuite.registry import EnvEntry

            ENVS = [
                EnvEntry(
                    "demo/Guess-v0",
                    "rlsuite_demo_plugin.guess:GuessEnv",
                    "rlsuite_demo_plugin.guess:GuessVectorEnv",
                    "find a hidden integer by guessing",
                )
            ]
            """
        )
    )
    info = root / "rlsuite_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rlsuite-demo-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[rlsuite.envs]\ndemo = rlsuite_demo_plugin.registry:ENVS\n\n"
        "[rlsuite.agents]\nbisection = rlsuite_demo_plugin.guess:Bisection\n"
    )
    return {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}


def rlsuite(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlsuite.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_plugin_package_is_listed_trained_and_evaluated(tmp_path: Path) -> None:
    env = install_plugin(tmp_path / "site")
    listed = rlsuite(env, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "demo/Guess-v0" in listed.stdout and "bisection" in listed.stdout
    config = {
        "env": {"id": "demo/Guess-v0", "num_envs": 4, "kwargs": {"n": 32}},
        "agent": {"name": "bisection"},
        "train": {"total_steps": 64, "checkpoint_every": 32, "log_every": 16},
        "eval": {"episodes": 8, "seeds": "1000:1008"},
    }
    (tmp_path / "guess.yaml").write_text(yaml.safe_dump(config))
    trained = rlsuite(env, "train", "guess.yaml", "--run-dir", "run", "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    evaluated = rlsuite(env, "eval", "run", "--json", "eval.json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    (row,) = json.loads((tmp_path / "eval.json").read_text())
    assert row["policy"] == "bisection" and row["episodes"] == 8
    q25, median, q75 = row["metrics"]["guesses"]
    assert 1 <= q25 <= median <= q75 <= 6  # bisection over 32 numbers: at most 6 guesses
    assert row["mean_return"] == pytest.approx(-median, abs=2)


def test_a_broken_plugin_is_a_warning_not_an_error(tmp_path: Path) -> None:
    env = install_plugin(tmp_path / "site")
    entry_points = tmp_path / "site" / "rlsuite_demo_plugin-0.1.dist-info" / "entry_points.txt"
    entry_points.write_text("[rlsuite.envs]\ndemo = rlsuite_demo_plugin.missing:ENVS\n")
    listed = rlsuite(env, "list", cwd=tmp_path)
    assert listed.returncode == 0
    assert "env plugin 'demo'" in listed.stderr and "failed to load" in listed.stderr
    assert "rlsuite/SOR-ShiftedLaplacian-v0" in listed.stdout


def test_any_gymnasium_id_trains_and_evaluates(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    config = {
        "env": {"id": "CartPole-v1", "num_envs": 2},
        "agent": {"name": "sb3.PPO", "params": {"kwargs": {"n_steps": 32, "batch_size": 32}}},
        "train": {"total_steps": 128, "checkpoint_every": 64, "log_every": 32},
        "eval": {"episodes": 3, "seeds": "1000:1003"},
    }
    (tmp_path / "cartpole.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    trained = rlsuite(env, "train", "cartpole.yaml", "--run-dir", "run", "--no-progress",
                      cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    evaluated = rlsuite(env, "eval", "run", "--json", "eval.json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    (row,) = json.loads((tmp_path / "eval.json").read_text())
    assert row["episodes"] == 3 and row["mean_return"] >= 8  # CartPole pays 1 per step alive


def test_bench_takes_any_gymnasium_id() -> None:
    from rlsuite.bench import benchmark_env

    result = benchmark_env("CartPole-v1", [1, 3], min_seconds=0.05)
    assert [row["num_envs"] for row in result["results"]] == [1, 3]
    assert all(row["native_steps_per_s"] > 0 and row["steps"] >= 1 for row in result["results"])


def test_the_single_env_batch_seeds_like_rlsuite() -> None:
    from rlsuite.single_env_batch import SingleEnvBatch

    batch = SingleEnvBatch("CartPole-v1", 3)
    obs, _ = batch.reset(seed=7)
    alone = SingleEnvBatch("CartPole-v1", 1)
    for i in range(3):
        first, _ = alone.reset(seed=7 + i)
        assert torch.equal(first[0], obs[i])
    with pytest.raises(ValueError, match="not supported"):
        SingleEnvBatch("Blackjack-v1", 1)  # a Tuple observation space


def test_register_agent_checks_what_it_gets() -> None:
    class Named(Agent):
        """A test agent."""

        name = "sb3.PPO"

    with pytest.raises(TypeError, match="needs an Agent subclass"):
        register_agent(int)
    with pytest.raises(ValueError, match="is taken"):
        register_agent(Named)
    assert AGENTS["sb3.PPO"].target == "rlsuite.integrations.sb3:SB3PPO"
