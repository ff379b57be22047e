"""A resumed SB3 run continues the env's episode stream, the optimizers, the random states and
(off-policy) the replay buffer, instead of restarting the episodes at 0 with fresh moments."""

from __future__ import annotations

import pytest
import torch

from rlsuite.config import load_config
from rlsuite.runs import RunDir, load_checkpoint
from rlsuite.training import train

pytest.importorskip("stable_baselines3")


class Crash(RuntimeError):
    pass


def _crash_at(step: int):
    def on_checkpoint(_: RunDir, at: int) -> None:
        if at == step:
            raise Crash(f"killed after the checkpoint at step {at}")

    return on_checkpoint


def _final(run: RunDir) -> dict[str, torch.Tensor]:
    return load_checkpoint(RunDir.open(run.path).latest_checkpoint())[0]


def _whole_and_resumed(make_config, tmp_path, agent: str, kwargs: dict) -> tuple[dict, dict]:
    path = make_config(
        agent__name=agent,
        agent__params={"kwargs": kwargs},
        env__num_envs=2,
        env__kwargs={"variance": "low", "n": 6, "sequence_length": 5},
        train__total_steps=96,
        train__checkpoint_every=32,
    )
    config = load_config(path)
    whole = train(config, tmp_path / "whole", progress=False)
    with pytest.raises(Crash):
        train(config, tmp_path / "killed", progress=False, on_checkpoint=_crash_at(32))
    resumed = train(None, resume=tmp_path / "killed", progress=False)  # type: ignore[arg-type]
    return _final(whole), _final(resumed)


def test_ppo_resume_continues_the_episode_stream(make_config, tmp_path) -> None:
    whole, resumed = _whole_and_resumed(
        make_config, tmp_path, "sb3.PPO", {"n_steps": 8, "batch_size": 16}
    )
    # 96 steps over 2 envs of 5-step episodes: 9 episodes ended in each env (index 9), not 6
    assert whole["env/episode_index"].tolist() == [9, 9]
    for key in ("env/episode_index", "env/episode_step", "env/env_seeds"):
        assert resumed[key].tolist() == whole[key].tolist(), key
    assert any(k.startswith("agent/optim.policy.") for k in resumed), "Adam moments are saved"


def test_dqn_resume_before_learning_starts_is_identical(make_config, tmp_path) -> None:
    # random actions only (learning_starts > total): replay buffer, env and random states go on
    whole, resumed = _whole_and_resumed(
        make_config, tmp_path, "sb3.DQN", {"learning_starts": 1000, "buffer_size": 500}
    )
    assert whole["agent/replay.pos_full"].tolist() == [48, 0]
    assert set(resumed) == set(whole)
    for key, value in whole.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0, msg=key)


def test_dqn_resume_after_learning_starts_keeps_the_buffer(make_config, tmp_path) -> None:
    whole, resumed = _whole_and_resumed(
        make_config,
        tmp_path,
        "sb3.DQN",
        {"learning_starts": 8, "buffer_size": 500, "batch_size": 8, "train_freq": 4},
    )
    assert resumed["agent/replay.pos_full"].tolist() == whole["agent/replay.pos_full"].tolist()
    # the transitions up to the checkpoint (16 steps of 2 envs) are the same ones
    for key in ("observations", "actions", "rewards", "dones"):
        torch.testing.assert_close(
            resumed[f"agent/replay.{key}"][:16], whole[f"agent/replay.{key}"][:16], msg=key
        )
    assert resumed["env/episode_index"].tolist() == whole["env/episode_index"].tolist()


def test_sac_resume_keeps_the_entropy_coefficient_and_optimizers(make_config, tmp_path) -> None:
    path = make_config(
        agent__name="sb3.SAC",
        agent__params={"kwargs": {"learning_starts": 8, "batch_size": 8, "buffer_size": 200}},
        env__num_envs=2,
        env__kwargs={"variance": "low", "n": 6, "sequence_length": 5, "action_type": "continuous"},
        train__total_steps=64,
        train__checkpoint_every=32,
    )
    config = load_config(path)
    with pytest.raises(Crash):
        train(config, tmp_path / "killed", progress=False, on_checkpoint=_crash_at(32))
    saved = _final(RunDir.open(tmp_path / "killed"))
    for key in ("sb3.log_ent_coef", "optim.actor.0.exp_avg", "optim.critic.0.exp_avg"):
        assert "agent/" + key in saved, key
    assert float(saved["agent/sb3.log_ent_coef"]) != 0.0  # trained away from log(1)
    resumed = train(None, resume=tmp_path / "killed", progress=False)  # type: ignore[arg-type]
    final = _final(resumed)
    assert final["env/episode_index"].tolist() == [6, 6]  # 64 steps / 2 envs, 5-step episodes
    assert final["agent/replay.pos_full"].tolist() == [32, 0]
