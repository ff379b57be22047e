"""Checks that used to come too late now come before any work and before the run directory
exists: seeds, the eval section, the agent/env pairing; and bad actions get messages that say
what is expected."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlsuite  # noqa: F401  (registers the ids)
from rlsuite.cli import main

SOR = "rlsuite/SOR-ShiftedLaplacian-v0"


def _refused(capsys, tmp_path, config, *needles: str, extra: tuple[str, ...] = ()) -> None:
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not run.exists(), "the run directory must not exist after a refused config"


@pytest.mark.parametrize(
    ("seed", "num_envs", "needle"),
    [
        (-1, 1, "train.seed: got -1"),
        (2**63, 1, f"train.seed: got {2**63}"),
        (2**63 - 1, 2, "env seeds reach"),
    ],
)
def test_seeds_outside_int64_name_the_key(make_config, tmp_path, capsys, seed, num_envs, needle):
    config = make_config(train__seed=seed, env__num_envs=num_envs)
    _refused(capsys, tmp_path, config, needle)


def test_negative_seed_flag_names_the_key(make_config, tmp_path, capsys) -> None:
    _refused(capsys, tmp_path, make_config(), "train.seed: got -1", extra=("--seed", "-1"))
    # and the same directory can then be used
    assert (
        main(["train", str(make_config()), "--run-dir", str(tmp_path / "run"), "--no-progress"])
        == 0
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"eval__baselines": ["fixd:1.5"]}, "eval.baselines: unknown SOR baseline 'fixd:1.5'"),
        ({"eval__baselines": ["fixed:3"]}, "eval.baselines: fixed:<omega> needs 0 < omega < 2"),
        ({"eval__env_kwargs": {"sequence_lenght": 3}}, "eval.env_kwargs"),
        ({"eval__env_kwargs": {"sequence_length": 0}}, "sequence_length must be a positive int"),
    ],
)
def test_eval_section_typos_fail_before_training(make_config, tmp_path, capsys, change, needle):
    _refused(capsys, tmp_path, make_config(**change), needle)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"env__num_envs": 2}, "TsallisINF learns from one sequence: it needs env.num_envs: 1"),
        (
            {"env__id": "rlsuite/MallocGame-v0", "env__kwargs": {}, "eval__env_kwargs": {}},
            "TsallisINF plays every arm, but MallocGameVectorEnv has illegal actions",
        ),
        (
            {
                "agent__name": "sb3.PPO",
                "env__id": "rlsuite/MallocGame-v0",
                "env__kwargs": {},
                "eval__env_kwargs": {},
            },
            "sb3.PPO ignores action masks",
        ),
    ],
)
def test_agent_env_pairing_fails_before_the_run_exists(
    make_config, tmp_path, capsys, change, needle
) -> None:
    if change.get("agent__name", "").startswith("sb3."):
        pytest.importorskip("stable_baselines3")
    _refused(capsys, tmp_path, make_config(**change), needle)


def test_single_env_action_messages() -> None:
    env = gym.make(SOR, n=6)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"action must be an int in \[0, 19\], got {2**70}"):
        env.step(2**70)
    with pytest.raises(ValueError, match=r"action must be an int in \[0, 19\], got '1.5'"):
        env.step("1.5")


@pytest.mark.parametrize(
    ("actions", "needle"),
    [
        ([1, 2], r"got shape \(2,\) \(2 values for 3 envs\)"),
        (torch.zeros(3, 2, dtype=torch.int64), r"got shape \(3, 2\)"),
        ([2**70, 1, 1], r"elements of dtype object"),
        (["1", "2", "3"], r"elements of dtype <U1"),
    ],
)
def test_batched_action_messages(actions, needle) -> None:
    env = gym.make_vec(SOR, num_envs=3, vectorization_mode="vector_entry_point", n=6)
    env.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"actions must be a batch of 3 actions for Discrete\(20\)"
    ):
        env.step(actions)
    with pytest.raises(ValueError, match=needle):
        env.step(actions)
    env.step(np.array([1, 2, 3]))  # still fine


def test_eval_refuses_unknown_baselines_and_huge_seeds_before_any_episode(
    trained_run, capsys, monkeypatch
) -> None:
    import rlsuite.evaluation as evaluation

    def no_episodes(*args, **kwargs):
        raise AssertionError("an episode was played before the arguments were checked")

    monkeypatch.setattr(evaluation, "run_agent_episodes", no_episodes)
    assert main(["eval", str(trained_run), "--baseline", "nope"]) == 2
    assert "--baseline: unknown SOR baseline 'nope'" in capsys.readouterr().err
    assert main(["eval", str(trained_run), "--seeds", f"{2**63 - 2}:{2**63 + 8}"]) == 2
    assert "reaches past the int64 seeds" in capsys.readouterr().err
