"""SIGKILL at random moments of ``rlsuite train`` (during training, checkpoint writes and
metrics writes alike), then ``--resume`` until the run finishes: the final checkpoint and
metrics equal an uninterrupted run's, for one of rlsuite's own agents per family that has one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from rlsuite.runs import RunDir, load_checkpoint

CONFIGS: dict[str, dict[str, Any]] = {
    "sor-tsallis_inf": {
        "env": {"id": "rlsuite/SOR-ShiftedLaplacian-v0", "kwargs": {"n": 8, "sequence_length": 20}},
        "agent": {"name": "tsallis_inf"},
        "train": {"total_steps": 600, "checkpoint_every": 40, "log_every": 10},
    },
    "rmab-random": {
        "env": {
            "id": "rlsuite/CoRMAB-Budget-v0",
            "num_envs": 4,
            "kwargs": {"num_arms": 6, "budget": 2, "horizon": 10},
        },
        "agent": {"name": "rmab.random"},
        "train": {"total_steps": 4000, "checkpoint_every": 200, "log_every": 40},
    },
    "malloc-random": {
        "env": {"id": "rlsuite/MallocGame-v0", "num_envs": 4, "kwargs": {"num_buffers": 12}},
        "agent": {"name": "malloc.random"},
        "train": {"total_steps": 4000, "checkpoint_every": 200, "log_every": 40},
    },
}


def train(config: Path, run_dir: Path, *resume: str) -> subprocess.Popen:
    args = ["--resume", str(run_dir)] if resume else [str(config), "--run-dir", str(run_dir)]
    return subprocess.Popen(
        [sys.executable, "-m", "rlsuite.cli", "train", *args, "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], list[dict]]:
    run = RunDir.open(run_dir)
    tensors, _ = load_checkpoint(run.latest_checkpoint())
    rows = [{k: v for k, v in r.items() if k != "time"} for r in run.read_metrics()]
    return tensors, rows


@pytest.mark.slow  # three runs of each config, killed three times: about 3 minutes
@pytest.mark.parametrize("name", list(CONFIGS))
def test_killed_at_random_moments_and_resumed_ends_identical(tmp_path: Path, name: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIGS[name]))
    whole = train(config, tmp_path / "whole")
    assert whole.wait(timeout=600) == 0, whole.stderr.read().decode()  # type: ignore[union-attr]
    rng = np.random.default_rng(sum(map(ord, name)))
    killed, kills = tmp_path / "killed", 0
    proc = train(config, killed)
    for _ in range(3):
        deadline = time.time() + 120  # wait until it trains (a checkpoint exists), then kill
        while time.time() < deadline and not list((killed / "checkpoints").glob("step_*.pt")):
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 1.5)))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        proc = train(config, killed, "resume")
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()  # type: ignore[union-attr]
    assert kills >= 1, "every run finished before it could be killed"
    whole_tensors, whole_rows = final_state(tmp_path / "whole")
    resumed_tensors, resumed_rows = final_state(killed)
    assert whole_tensors.keys() == resumed_tensors.keys()
    for key in whole_tensors:
        torch.testing.assert_close(
            resumed_tensors[key], whole_tensors[key], rtol=0, atol=0, msg=key
        )
    assert resumed_rows == whole_rows
