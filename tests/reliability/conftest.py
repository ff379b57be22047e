"""Shared pieces of the reliability tests: a small SOR config and a trained run to copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from rlsuite.cli import main

CONFIG = {
    "name": "reliability",
    "env": {
        "id": "rlsuite/SOR-ShiftedLaplacian-v0",
        "kwargs": {"variance": "low", "n": 6, "sequence_length": 400},
    },
    "agent": {"name": "tsallis_inf", "params": {}},
    "train": {"total_steps": 120, "seed": 3, "checkpoint_every": 40, "log_every": 20},
    "eval": {
        "episodes": 3,
        "seeds": "100:103",
        "baselines": [],
        "env_kwargs": {"sequence_length": 4},
    },
}


def write_config(path: Path, **changes: object) -> Path:
    """``CONFIG`` with ``a__b=value`` changes, written as YAML to ``path``."""
    config = json.loads(json.dumps(CONFIG))
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def _trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("trained")
    config = write_config(base / "c.yaml")
    assert main(["train", str(config), "--run-dir", str(base / "run"), "--no-progress"]) == 0
    return base / "run"


@pytest.fixture
def trained_run(_trained_run: Path, tmp_path: Path) -> Path:
    """A copy of a finished tsallis_inf run (seed 3, checkpoints at steps 40, 80, 120)."""
    return Path(shutil.copytree(_trained_run, tmp_path / "run"))


@pytest.fixture
def make_config(tmp_path: Path):
    """``make_config(**changes)``: a config file in ``tmp_path`` (see :func:`write_config`)."""

    def make(name: str = "c.yaml", **changes: object) -> Path:
        return write_config(tmp_path / name, **changes)

    return make
