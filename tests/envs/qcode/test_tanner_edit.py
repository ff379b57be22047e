"""The TannerEdit environment: gymnasium contract, masks, batch == single, rewards, baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from rlsuite.envs.qcode import baselines
from rlsuite.envs.qcode.env import TannerEditEnv
from rlsuite.envs.qcode.tanner_edit import TannerEditVectorEnv, random_tanner_graphs

import rlsuite  # noqa: F401 - registers the ids

PEG = baselines.progressive_edge_growth(9, 12, 2, 3)


def test_check_env_and_a_random_legal_episode() -> None:
    # check_env's step-determinism check samples its action before resetting; a fixed start
    # makes the state-dependent mask the same on both sides of that reset
    checked = TannerEditEnv(initial=PEG)
    checked.action_space.seed(0)
    check_env(checked, skip_render_check=True)
    env = gym.make("rlsuite/QCode-TannerEdit-v0")
    obs, info = env.reset(seed=0)
    env.action_space.seed(0)
    total, start = 0.0, None
    for _ in range(60):
        action = env.action_space.sample()
        assert info["action_mask"][action]
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        start = info["objective"] - reward if start is None else start
        total += reward
        assert info["max_check_weight"] <= 6 and info["max_qubit_degree"] <= 3
        if terminated or truncated:
            break
    assert total == pytest.approx(info["objective"] - start, abs=1e-5)


def test_masks_keep_the_degree_caps_and_masked_actions_fail() -> None:
    env = TannerEditVectorEnv(num_envs=16)
    _, info = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(40):
        mask = info["action_mask"].numpy()
        H = env.H[:, 0].numpy()
        for b in range(16):
            for a in np.flatnonzero(mask[b, :-1]):
                i, j = divmod(int(a), 12)
                G = H[b].copy()
                G[i, j] ^= True
                assert 1 <= G.sum(1).min() and G.sum(1).max() <= 3
                assert 1 <= G.sum(0).min() and G.sum(0).max() <= 3
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
        _, _, _, _, info = env.step(actions)
    masked = np.flatnonzero(~info["action_mask"][0].numpy())
    before = env.H.clone()
    with pytest.raises(
        ValueError, match=r"masked TannerEdit action — env 0: action \d+ \(toggle H\["
    ):
        env.step(np.concatenate([[masked[0]], np.full(15, env.edges)]))
    assert torch.equal(env.H, before)


def test_batched_core_equals_single_env_and_seeds_repeat() -> None:
    batch = TannerEditVectorEnv(num_envs=3, max_steps=8)
    singles = [TannerEditEnv(max_steps=8) for _ in range(3)]
    obs, info = batch.reset(seed=5)
    single = [s.reset(seed=5 + i) for i, s in enumerate(singles)]
    rng = np.random.default_rng(1)
    done = np.zeros(3, dtype=bool)
    for _ in range(20):  # across truncations (next-step autoreset)
        for i, (o, i_info) in enumerate(single):
            np.testing.assert_array_equal(obs[i].numpy(), o)
            np.testing.assert_array_equal(info["action_mask"][i].numpy(), i_info["action_mask"])
        actions = np.array(
            [rng.choice(np.flatnonzero(m[:-1])) for m in info["action_mask"].numpy()]
        )
        obs, reward, terminated, truncated, info = batch.step(actions)
        for i, s in enumerate(singles):
            if done[i]:
                single[i] = s.reset()
                continue
            o, r, term, trunc, i_info = s.step(int(actions[i]))
            assert float(reward[i]) == pytest.approx(r, abs=1e-9)
            assert (bool(terminated[i]), bool(truncated[i])) == (term, trunc)
            single[i] = (o, i_info)
        done = (terminated | truncated).numpy()
    again = TannerEditVectorEnv(num_envs=1)
    again.reset(seed=6)
    first = TannerEditVectorEnv(num_envs=3)
    first.reset(seed=5)
    assert torch.equal(again.H[0], first.H[1])


def test_random_graphs_respect_the_caps() -> None:
    H = random_tanner_graphs(torch.arange(200), 9, 12, 3, 3, 2)
    assert int(H.sum(2).max()) <= 3 and int(H.sum(1).max()) <= 3
    assert bool((H.sum(2) >= 1).all()) and bool((H.sum(1) >= 1).all())
    assert not torch.equal(H[0], H[1])


def test_stop_terminates_and_bad_arguments_are_refused() -> None:
    env = TannerEditEnv(initial=PEG)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(env.core.edges)
    assert terminated and not truncated and reward == 0.0
    assert (info["n"], info["k"], info["d"]) == (225, 17, 4)
    with pytest.raises(ValueError, match="initial must have row weights in"):
        TannerEditEnv(initial=np.ones((9, 12), dtype=int))
    with pytest.raises(ValueError, match="objective must be one of"):
        TannerEditEnv(objective="rate")
    with pytest.raises(ValueError, match="initial must have shape"):
        TannerEditEnv(initial=np.ones((3, 3), dtype=int))


def test_peg_and_random_search() -> None:
    H = baselines.progressive_edge_growth(9, 12, 2, 3)
    np.testing.assert_array_equal(H.sum(0), 2)
    assert H.sum(1).max() <= 3
    params = baselines.code_parameters(H)
    assert (params["n"], params["k"], params["d"]) == (225, 17, 4.0)
    _, best = baselines.random_search(64, seed=0)
    assert best["max_check_weight"] <= 6 and best["objective"] > 0
    with pytest.raises(ValueError, match="more than 9 checks of weight"):
        baselines.progressive_edge_growth(9, 12, 3, 2)
