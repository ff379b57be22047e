"""``rlsuite bench`` on envs whose random actions need care: coRMAB's combinatorial sets."""

from __future__ import annotations

import json

import pytest

from rlsuite.cli import main

CORMAB_IDS = [
    "rlsuite/CoRMAB-Budget-v0",
    "rlsuite/CoRMAB-Interventions-v0",
    "rlsuite/CoRMAB-Path-v0",
    "rlsuite/CoRMAB-Scheduling-v0",
    "rlsuite/CoRMAB-Capacity-v0",
]


@pytest.mark.parametrize("env_id", CORMAB_IDS)
def test_bench_plays_feasible_actions_on_cormab(env_id: str, capsys) -> None:
    """A uniformly random MultiBinary action breaks the coRMAB constraints (the env refuses it:
    ``bench`` used to fail with "infeasible 'budget' action"); bench draws each env's actions
    with ``sample_feasible`` and reports positive rates for every size."""
    code = main(["bench", env_id, "--num-envs", "1,4", "--min-seconds", "0.05"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env_id"] == env_id
    assert result["actions"] == "random feasible (sample_feasible)"
    assert [row["num_envs"] for row in result["results"]] == [1, 4]
    for row in result["results"]:
        assert row["steps"] >= 1
        assert row["native_steps_per_s"] > 0 and row["sync_vector_steps_per_s"] > 0
        assert row["speedup"] > 0
