"""The command line's torch thread count: one per process unless a config or flag says."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from rlsuite.cli import main
from rlsuite.config import ConfigError, load_config
from rlsuite.threads import DEFAULT_THREADS, configure_threads


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_configure_threads_sets_and_checks() -> None:
    assert DEFAULT_THREADS == 1
    assert configure_threads(2) == 2 and torch.get_num_threads() == 2
    assert configure_threads() == 1 and torch.get_num_threads() == 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a positive int"):
            configure_threads(bad)  # type: ignore[arg-type]


def test_train_threads_key_and_flags(tmp_path: Path) -> None:
    config = {
        "env": {"id": "rlsuite/SOR-ShiftedLaplacian-v0", "kwargs": {"sequence_length": 4}},
        "agent": {"name": "tsallis_inf"},
        "train": {"total_steps": 8, "checkpoint_every": 8, "log_every": 4, "threads": 2},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert load_config(path).train.threads == 2
    with pytest.raises(ConfigError, match=r"train\.threads"):
        load_config(path, ["train.threads=0"])
    torch.set_num_threads(1)
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    assert torch.get_num_threads() == 2  # the run's own count
    assert main(["train", str(path), "--run-dir", str(tmp_path / "r2"), "--threads", "1",
                 "--no-progress"]) == 0  # fmt: skip
    assert torch.get_num_threads() == 1
    assert main(["train", "--resume", str(tmp_path / "run"), "--threads", "2"]) == 2
    torch.set_num_threads(2)
    assert main(["bench", "rlsuite/SOR-ShiftedLaplacian-v0", "--num-envs", "1",
                 "--min-seconds", "0.01", "--set", "sequence_length=2"]) == 0  # fmt: skip
    assert torch.get_num_threads() == 1  # the CLI's default
