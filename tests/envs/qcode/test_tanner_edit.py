"""The TannerEdit environment: gymnasium contract, masks, batch == single, rewards, baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from rlsuite.envs.qcode import baselines
from rlsuite.envs.qcode.env import TannerEditEnv
from rlsuite.envs.qcode.product import classical_parameters, content_keys
from rlsuite.envs.qcode.tanner_edit import TannerEditVectorEnv, TannerState, random_tanner_graphs

import rlsuite  # noqa: F401 - registers the ids

PEG = baselines.progressive_edge_growth(9, 12, 2, 3)


def test_check_env_and_a_random_legal_episode() -> None:
    check_env(TannerEditEnv(), skip_render_check=True)
    check_env(TannerEditEnv(two_matrices=True, max_steps=5), skip_render_check=True)
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


# -- the search model (rlsuite.model; the generic protocol tests are tests/core/test_model.py) --
def test_classical_distance_estimates_are_keyed_by_the_matrix() -> None:
    """Above max_dimension the distance is an estimate whose information sets are keyed by H:
    the same in any batch order and whatever torch's global generator holds."""
    H = random_tanner_graphs(torch.arange(64), 9, 12, 3, 3, 2)
    torch.manual_seed(0)
    first = classical_parameters(H, max_dimension=0, trials=1)
    torch.manual_seed(1)
    flipped = classical_parameters(H.flip(0), max_dimension=0, trials=1)
    exact = classical_parameters(H, max_dimension=16)
    assert torch.equal(first.distance, flipped.distance.flip(0))
    assert not bool(first.exact.any()) and bool(exact.exact.all())
    assert bool((first.distance >= exact.distance).all())  # an upper bound...
    assert int((first.distance > exact.distance).sum()) == 7  # ...that one trial misses at times
    assert first.distance[:6].tolist() == [3.0, 2.0, 2.0, 2.0, 2.0, 3.0]
    assert exact.distance[:6].tolist() == [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    keys = content_keys(H)
    assert torch.equal(keys, content_keys(H.clone())) and len(set(keys.tolist())) == 64
    assert not torch.equal(content_keys(H.transpose(1, 2)), keys)


def test_the_distance_above_max_dimension_is_the_same_for_the_same_h_in_any_env() -> None:
    one = TannerEditVectorEnv(num_envs=1, initial=PEG, max_dimension=2)
    three = TannerEditVectorEnv(num_envs=3, max_dimension=2)
    one.reset(seed=0)
    three.reset(seed=41)
    three.set_state(one.get_state(), 2)  # set_state recomputes d from H and checks the cache
    _, _, _, _, a = one.step(np.array([one.edges]))
    _, _, _, _, b = three.step(np.full(3, three.edges))
    assert float(a["d"][0]) == float(b["d"][2]) == 4.0
    assert float(a["distance_exact"][0]) == float(b["distance_exact"][2]) == 0.0
    assert float(a["k"][0]) == 17.0


def test_step_from_is_pure_and_stopped_states_stay_put() -> None:
    env = TannerEditVectorEnv(num_envs=2, initial=PEG, max_steps=3)
    env.reset(seed=0)
    state = env.get_state()
    assert isinstance(state, TannerState)
    assert state.H.shape == (2, 1, 9, 12) and state.t.tolist() == [0, 0]
    assert state.dimension.tolist() == [17, 17] and state.distance.tolist() == [4.0, 4.0]
    mask = env.action_masks()[0]
    toggle = int(torch.nonzero(mask[:-1])[0])
    actions = torch.tensor([toggle, env.edges])
    first = env.step_from(state, actions)
    again = env.step_from(state, actions)
    assert torch.equal(first.rewards, again.rewards)
    assert torch.equal(state.H, env.H) and state.t.tolist() == [0, 0]  # nothing moved
    assert first.next_states.t.tolist() == [1, 0]
    assert first.next_states.stopped.tolist() == [False, True]
    assert first.next_states.episode_step.tolist() == [1, 1]
    assert first.terminated.tolist() == [False, True] and float(first.rewards[1]) == 0.0
    # a stopped state is absorbing: reward 0, not terminated again, nothing changes
    stopped = first.next_states.select([1])
    after = env.step_from(stopped, torch.tensor([toggle]))
    assert float(after.rewards[0]) == 0.0 and not bool(after.terminated[0])
    assert torch.equal(
        after.next_states.H, stopped.H
    ) and after.next_states.episode_step.tolist() == [1]
    # no time limit in the model: past max_steps the toggles go on
    deep = first.next_states.select([0])
    for _ in range(4):
        legal = env.masks_of(deep.H)[0, :-1]
        deep = env.step_from(deep, torch.nonzero(legal)[:1, 0]).next_states
    assert deep.t.tolist() == [5] and float(env.observe_states(deep)[0, -1]) == 0.0
    with pytest.raises(ValueError, match=r"masked TannerEdit action — position 0: action"):
        env.step_from(state.select([0]), (~mask[:-1]).nonzero()[:1, 0])
    with pytest.raises(ValueError, match=r"actions must be in \[0, 108\]"):
        env.step_from(state, torch.tensor([0, 109]))


def test_states_of_other_sizes_and_caps_are_refused() -> None:
    env = TannerEditVectorEnv(num_envs=1, num_checks=4, num_bits=6)
    env.reset(seed=0)
    for kwargs, match in (
        ({"num_checks": 5, "num_bits": 6}, "num_checks=4, num_bits=6"),
        ({"num_checks": 4, "num_bits": 6, "two_matrices": True}, "two_matrices=False"),
    ):
        other = TannerEditVectorEnv(num_envs=1, **kwargs)
        other.reset(seed=0)
        with pytest.raises(ValueError, match=match):
            env.set_state(other.get_state())
        with pytest.raises(ValueError, match=match):
            env.step_from(other.get_state(), torch.tensor([0]))
    loose = TannerEditVectorEnv(num_envs=1, num_checks=4, num_bits=6, row_cap=6, col_cap=4)
    loose.reset(seed=0)
    crowded = loose.get_state()
    crowded.H[:] = True
    with pytest.raises(ValueError, match="degree caps"):
        env.set_state(crowded)
    forged = env.get_state()
    forged.distance += 1
    with pytest.raises(ValueError, match="not those of its H"):
        env.set_state(forged)


def test_a_checkpoint_keeps_the_stopped_flag() -> None:
    env = TannerEditVectorEnv(num_envs=2, initial=PEG)
    env.reset(seed=0)
    toggle = int(torch.nonzero(env.action_masks()[0, :-1])[0])
    env.step(np.array([toggle, env.edges]))
    restored = TannerEditVectorEnv(num_envs=2, initial=PEG)
    restored.load_state_dict(env.state_dict())
    a, b = env.get_state(), restored.get_state()
    for name in ("H", "t", "start_score", "stopped", "dimension", "distance"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert b.stopped.tolist() == [False, True] and b.episode_step.tolist() == [1, 1]
