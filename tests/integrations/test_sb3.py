"""The SB3 adapter: SB3's episode-end conventions, and sb3.* agents in the Agent protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rlsuite.envs.sor.vector import SORShiftedLaplacianVectorEnv

from rlsuite.integrations.sb3 import SB3DQN, SB3PPO, SB3SAC, SB3VecEnv
from rlsuite.runs import load_checkpoint


def test_vecenv_resets_on_the_same_step_with_terminal_observation() -> None:
    env = SORShiftedLaplacianVectorEnv(3, sequence_length=2)
    vec = SB3VecEnv(env)
    vec.seed(7)
    first = vec.reset()
    reference = SORShiftedLaplacianVectorEnv(3, sequence_length=2)
    ref_obs, _ = reference.reset(seed=7)
    np.testing.assert_array_equal(first, ref_obs.numpy())
    obs, rewards, dones, infos = vec.step(np.array([3, 4, 5]))
    assert not dones.any() and rewards.dtype == np.float32
    assert all(info["iterations"] == -r for info, r in zip(infos, rewards, strict=True))
    ref_obs = reference.step(torch.tensor([3, 4, 5]))[0]
    np.testing.assert_array_equal(obs, ref_obs.numpy())
    obs, rewards, dones, infos = vec.step(np.array([3, 4, 5]))
    final_obs, _, _, truncated, _ = reference.step(torch.tensor([3, 4, 5]))
    assert dones.all() and truncated.all() and (rewards < 0).all()
    for i, info in enumerate(infos):
        np.testing.assert_array_equal(info["terminal_observation"], final_obs[i].numpy())
        assert info["TimeLimit.truncated"] is True
    # the returned observation is the first of the next episode, not the terminal one
    assert (env.t == 0).all() and (env.episode_index == 1).all()
    reset_obs = reference.step(torch.tensor([3, 4, 5]))[0]  # next-step autoreset of the reference
    np.testing.assert_array_equal(obs, reset_obs.numpy())


@pytest.mark.parametrize("agent_cls", [SB3PPO, SB3DQN])
def test_sb3_agent_learn_save_load_predict(agent_cls, tmp_path) -> None:
    env = SORShiftedLaplacianVectorEnv(4, sequence_length=4)
    kwargs = (
        {"n_steps": 8, "batch_size": 16}
        if agent_cls is SB3PPO
        else {"learning_starts": 8, "buffer_size": 100}
    )
    agent = agent_cls(env, {"kwargs": kwargs}, seed=0)
    seen = []
    agent.learn(64, callback=lambda a, m: seen.append(a.num_timesteps) or None)
    assert agent.num_timesteps >= 64 and seen[-1] == agent.num_timesteps
    path = agent.save(tmp_path / "agent.pt")
    _, meta = load_checkpoint(path)
    assert meta["agent"] == agent_cls.name and meta["config"]["kwargs"] == kwargs
    restored = agent_cls.load(path, SORShiftedLaplacianVectorEnv(4, sequence_length=4))
    obs, _ = env.reset(seed=1)
    torch.testing.assert_close(restored.predict(obs), agent.predict(obs))
    assert restored.num_timesteps == agent.num_timesteps


def test_sb3_errors_are_clear() -> None:
    with pytest.raises(ValueError, match=r"agent\.params\.kwargs"):
        SB3PPO(SORShiftedLaplacianVectorEnv(2), {"kwargs": {"not_an_argument": 1}})
    with pytest.raises(ValueError, match="cannot train on Discrete"):
        SB3SAC(SORShiftedLaplacianVectorEnv(2))


def test_sb3_sac_trains_on_the_continuous_omega_env() -> None:
    env = SORShiftedLaplacianVectorEnv(2, sequence_length=4, action_type="continuous", n=6)
    agent = SB3SAC(
        env, {"kwargs": {"learning_starts": 4, "batch_size": 8, "buffer_size": 64}}, seed=0
    )
    agent.learn(16)
    obs, _ = env.reset(seed=3)
    omega = agent.predict(obs)
    assert omega.shape == (2, 1)
    assert bool(((omega >= 1.0) & (omega <= 1.99)).all())  # inside the Box, so env.step accepts it
    env.step(omega)


def test_maskable_ppo_never_plays_a_masked_action(tmp_path) -> None:
    """sb3.MaskablePPO on a masked env: learns, saves, loads, and every action it plays (in
    training and in predict) is legal, or the env would raise."""
    from rlsuite.envs.malloc.vector import MallocGameVectorEnv

    from rlsuite.integrations.sb3 import SB3MaskablePPO

    env = MallocGameVectorEnv(4, num_buffers=16)
    agent = SB3MaskablePPO(env, {"kwargs": {"n_steps": 16, "batch_size": 32}}, seed=0)
    agent.learn(128)
    path = agent.save(tmp_path / "agent.pt")
    restored = SB3MaskablePPO.load(path, MallocGameVectorEnv(4, num_buffers=16))
    obs, info = env.reset(seed=3)
    restored.env.reset(seed=3)
    for _ in range(20):
        actions = agent.predict(obs)
        torch.testing.assert_close(restored.predict(obs), actions)
        assert bool(info["action_mask"].gather(1, actions[:, None]).all())
        obs, _, _, _, info = env.step(actions)
        restored.env.step(actions)
    with pytest.raises(ValueError, match="needs an env with action masks"):
        SB3MaskablePPO(SORShiftedLaplacianVectorEnv(2))
