"""Inputs that used to give a wrong answer without a word are refused with a clear error:
a complex Matrix Market file, a NaN MILP objective, ``sequence_length=0`` for the sparse SOR
env, the distance of a non-commuting pair of check matrices."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import torch
from rlsuite.envs.qcode.css import CodeError
from rlsuite.envs.qcode.distance import estimate_distance
from rlsuite.envs.rmab.milp import MILP
from rlsuite.envs.sor.problems import read_matrix_market

import rlsuite  # noqa: F401  (registers the ids)


def _spd(n: int = 4) -> sp.csr_matrix:
    return sp.csr_matrix(sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(n, n)))


def test_a_complex_matrix_market_file_is_refused(tmp_path) -> None:
    path = tmp_path / "c.mtx"
    scipy.io.mmwrite(str(path), _spd() * (1 + 0.5j))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error, not a dropped part
        with pytest.raises(ValueError, match=r"c\.mtx.* complex matrix"):
            read_matrix_market(path)
        with pytest.raises(ValueError, match="complex matrix"):
            gym.make("rlsuite/SOR-SparseSequence-v0", matrices=[str(path)])


def test_a_nan_objective_is_refused_before_the_solver() -> None:
    milp = MILP(
        sp.csr_matrix(np.ones((1, 2))),
        np.array([0.0]),
        np.array([1.0]),
        np.zeros(2),
        np.ones(2),
        np.ones(2, dtype=bool),
        ("x0", "x1"),
    )
    with pytest.raises(ValueError, match=r"objective must be finite; entries \[1\].*'x1'"):
        milp.solve(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="objective must be finite"):
        milp.optimize(np.array([np.inf, 0.0]))


@pytest.mark.parametrize("length", [0, -2, 1.5, True])
def test_sparse_sequence_length_zero_is_refused(length) -> None:
    with pytest.raises(ValueError, match=r"sequence_length must be a positive int, got"):
        gym.make("rlsuite/SOR-SparseSequence-v0", matrices=[_spd()], sequence_length=length)
    env = gym.make("rlsuite/SOR-SparseSequence-v0", matrices=[_spd(), 2 * _spd()])
    assert env.unwrapped.core.sequence_length == 2  # None: the sequence's own length


def test_distance_of_a_non_commuting_pair_is_refused() -> None:
    hx = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]])
    hz = torch.tensor([[1, 0, 1, 0]])  # overlaps X check 0 on one qubit
    with pytest.raises(CodeError, match="X check 0 and Z check 0 overlap on an odd number"):
        estimate_distance(hx, hz, trials=4, generator=torch.Generator().manual_seed(0))
    good = torch.tensor([[1, 1, 1, 1]])
    assert float(estimate_distance(good, good, trials=8)[0]) == 2.0


def test_eval_on_a_sparse_sequence_says_the_seeds_replay_the_same_systems(tmp_path) -> None:
    import scipy.sparse as sp
    import yaml
    from scipy.io import mmwrite

    from rlsuite.cli import main

    path = tmp_path / "a.mtx"
    mmwrite(str(path), sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(8, 8), format="csr"))
    config = {
        "env": {
            "id": "rlsuite/SOR-SparseSequence-v0",
            "kwargs": {"matrices": [str(path)], "sequence_length": 2},
        },
        "agent": {"name": "tsallis_inf"},
        "train": {"total_steps": 4, "checkpoint_every": 4, "log_every": 2},
        "eval": {"episodes": 2, "seeds": "1000:1002"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "c.yaml"), "--run-dir", str(tmp_path / "run"),
                 "--no-progress"]) == 0  # fmt: skip
    out = tmp_path / "e.json"
    assert main(["eval", str(tmp_path / "run"), "--json", str(out)]) == 0
    import json

    row = json.loads(out.read_text())[0]  # the agent's row
    assert any("replays the same user systems" in note for note in row["notes"])
