"""The WeightReduction environment: contract, masks, invariants of every move, errors, baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from rlsuite.envs.qcode import baselines, moves
from rlsuite.envs.qcode.codes import named_code
from rlsuite.envs.qcode.env import WeightReductionEnv
from rlsuite.envs.qcode.weight_reduction import (
    WeightReductionState,
    WeightReductionVectorEnv,
    code_key,
    excess,
)

import rlsuite  # noqa: F401 - registers the ids
from rlsuite.vector import sample_legal

SMALL = {"code": "steane", "growth": 6, "max_steps": 12}


def test_check_env_and_observations() -> None:
    check_env(WeightReductionEnv(**SMALL), skip_render_check=True)
    env = gym.make("rlsuite/QCode-WeightReduction-v0", **SMALL)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info["action_mask"][-1]


@pytest.mark.parametrize("start", ["steane", "hgp:hamming:3", "toric:3"])
def test_random_legal_moves_keep_the_code_valid(start: str) -> None:
    """Every move keeps Hx·Hzᵀ = 0 (checked here: moves skip CSSCode's validation), k and binary matrices, grows n as
    its definition says, and stays within the maxima. Targets no code here can meet
    (w_target = q_target = 1: with the defaults the Steane and toric codes already meet them,
    so every episode ended on its first move and nothing was checked) keep every episode going
    for all 6 moves: 3 envs × 6 = 18 moves checked, the last ones on the truncating step."""
    env = WeightReductionVectorEnv(
        num_envs=3, code=start, growth=4, max_steps=6, w_target=1, q_target=1
    )
    _, info = env.reset(seed=1)
    k0 = named_code(start).k
    rng = np.random.default_rng(0)
    checked = 0
    resetting = np.zeros(3, dtype=bool)  # envs whose next step is an autoreset, not a move
    for _ in range(6):
        mask = info["action_mask"].numpy()
        actions = np.array([rng.choice(np.flatnonzero(m[:-1])) for m in mask])
        before = list(env.codes)
        predicted = [
            moves.predicted_size(code, env.action_to_move(int(a)))
            for code, a in zip(before, actions, strict=True)
        ]
        _, _, terminated, truncated, info = env.step(actions)
        for i, code in enumerate(env.codes):
            if resetting[i]:
                continue
            assert (code.n, code.hx.shape[0], code.hz.shape[0]) == predicted[i]
            assert code.k == k0
            # moves build their codes unvalidated (CSSCode.trusted): commutation checked here
            assert not ((code.hx.astype(np.int64) @ code.hz.T.astype(np.int64)) % 2).any()
            assert (
                set(np.unique(code.hx)) <= {0, 1} and code.hx.any(1).all() and code.hz.any(1).all()
            )
            assert (
                code.n <= env.max_qubits
                and max(code.hx.shape[0], code.hz.shape[0]) <= env.max_checks
            )
            checked += 1
        resetting = (terminated | truncated).numpy()
    assert checked == 18
    assert bool(truncated.all()) and not bool(terminated.any())


def test_same_seed_same_codes_and_batch_equals_single() -> None:
    kwargs = {"code": ["steane", "toric:3"], "growth": 4, "max_steps": 5}
    batch = WeightReductionVectorEnv(num_envs=2, **kwargs)
    singles = [WeightReductionEnv(**kwargs) for _ in range(2)]
    obs, info = batch.reset(seed=3)
    states = [s.reset(seed=3 + i) for i, s in enumerate(singles)]
    rng = np.random.default_rng(2)
    for _ in range(4):
        for i, (o, i_info) in enumerate(states):
            np.testing.assert_array_equal(obs[i].numpy(), o)
            np.testing.assert_array_equal(info["action_mask"][i].numpy(), i_info["action_mask"])
        actions = np.array(
            [rng.choice(np.flatnonzero(m[:-1])) for m in info["action_mask"].numpy()]
        )
        obs, _reward, terminated, truncated, info = batch.step(actions)
        for i, s in enumerate(singles):
            o, _r, term, trunc, i_info = s.step(int(actions[i]))
            states[i] = (o, i_info)
            np.testing.assert_array_equal(batch.codes[i].hx, s.core.codes[0].hx)
            assert (bool(terminated[i]), bool(truncated[i])) == (term, trunc)
        if bool((terminated | truncated).any()):
            break


def test_gauging_steane_lowers_its_distance_and_the_env_reports_it() -> None:
    env = WeightReductionEnv(
        code="steane", growth=4, max_steps=3, w_target=3, q_target=3, exact_distance_max_qubits=0
    )
    env.reset(seed=0)
    gauge = env.core.move_to_action(moves.Move.gauge(0, "x"))
    assert env.action_masks()[gauge]
    start = named_code("steane")
    _, reward, terminated, _, info = env.step(gauge)
    assert info["distance"] == 2.0 and info["distance_is_upper_bound"] == 1.0
    assert info["n"] == 8 and not terminated
    gauged = moves.gauge_check(start, 0, "x")
    expected = excess(start, 3, 3) - excess(gauged, 3, 3) - 1 / 7 - (3 - 2) / 3
    assert reward == pytest.approx(expected, abs=1e-6)  # the distance loss is in the reward


def test_masked_actions_fail_clearly() -> None:
    env = WeightReductionVectorEnv(num_envs=1, code="steane", growth=2)
    _, info = env.reset(seed=0)
    masked = int(np.flatnonzero(~info["action_mask"][0].numpy())[0])
    before = env.codes[0]
    with pytest.raises(ValueError, match=r"masked WeightReduction action — env 0: action \d+"):
        env.step(np.array([masked]))
    assert env.codes[0] is before
    with pytest.raises(ValueError, match="encodes no logical qubit"):
        WeightReductionVectorEnv(
            code=named_code("steane").__class__(np.eye(2, dtype=int), np.zeros((0, 2), dtype=int))
        )


def test_excess_and_stop() -> None:
    code = named_code("hgp:hamming:3")
    w = code.max_check_weight
    assert excess(code, w, code.max_qubit_degree) == 0.0 and excess(code, w - 1, 99) > 0
    env = WeightReductionEnv(code="hgp:hamming:3")
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(env.core.num_actions - 1)
    assert terminated and reward == 0.0 and info["k"] == 16 and info["n"] == 58


def test_pipeline_baseline_reduces_the_x_side() -> None:
    results = baselines.episode_results(
        "pipeline",
        lambda n: WeightReductionVectorEnv(n, code="hgp:hamming:3", max_steps=300),
        [0],
    )
    assert results.metrics["n"][0] > 58
    with pytest.raises(ValueError, match="unknown WeightReductionVectorEnv baseline"):
        baselines.Baseline("peg", WeightReductionVectorEnv(code="steane"))


def test_pipeline_phases_run_once_in_order() -> None:
    # after the thickening only conings follow, although coning adds qubits of X-degree > 3
    env = WeightReductionVectorEnv(code="hgp:hamming:3", max_qubits=4000, max_checks=4000)
    code = named_code("hgp:hamming:3")
    first = baselines.pipeline_move(env, code)
    assert first is not None and first.kind == "copy"
    code = moves.reduce_weights(code, layers=2, heights="cone", cone=False)
    kinds = []
    for _ in range(3):
        move = baselines.pipeline_move(env, code)
        assert move is not None
        kinds.append(move.kind)
        code = moves.apply_move(code, move)
    assert kinds == ["cone"] * 3
    assert code.qubit_degrees("x").max() > moves.COPY_DEGREE  # the coning's edge qubits


def test_greedy_cannot_start_on_the_hgp_codes() -> None:
    # every legal first move raises the excess weight, so the greedy policy stops at once
    for name in ("hgp:hamming:3", "hgp:rm:1:3"):
        env = WeightReductionVectorEnv(code=name)
        env.reset(seed=0)
        code, mask = env.codes[0], env.action_masks()[0].numpy()
        before = excess(code, env.w_target, env.q_target)
        gains = [
            before - excess(moves.apply_move(code, env.action_to_move(int(a))), 6, 6)
            for a in np.flatnonzero(mask[:-1])
        ]
        assert max(gains) < 0
        assert baselines.greedy_move(env, code, mask) is None


def test_every_action_names_a_move_and_round_trips() -> None:
    env = WeightReductionVectorEnv(code="steane", growth=2)
    for action in range(env.num_actions):
        move = env.action_to_move(action)
        assert env.move_to_action(move) == action
        assert env.describe_action(action) == ("stop" if move is None else str(move))


def test_checkpoint_round_trip_restores_the_codes() -> None:
    env = WeightReductionVectorEnv(num_envs=2, code="steane", growth=4, max_steps=8)
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(2):
        actions = np.array(
            [rng.choice(np.flatnonzero(m[:-1])) for m in info["action_mask"].numpy()]
        )
        _, _, _, _, info = env.step(actions)
    other = WeightReductionVectorEnv(num_envs=2, code="steane", growth=4, max_steps=8)
    other.load_state_dict(env.state_dict())
    for a, b in zip(env.codes, other.codes, strict=True):
        np.testing.assert_array_equal(a.hx, b.hx)
        np.testing.assert_array_equal(a.hz, b.hz)
    np.testing.assert_array_equal(other.action_masks().numpy(), env.action_masks().numpy())
    with pytest.raises(ValueError, match="padded to"):
        WeightReductionVectorEnv(num_envs=2, code="steane", growth=5).load_state_dict(
            env.state_dict()
        )


def test_without_qldpc_the_env_says_which_extra_to_install(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_qldpc(name, *args, **kwargs):
        if name == "qldpc" or name.startswith("qldpc."):
            raise ModuleNotFoundError("No module named 'qldpc'", name="qldpc")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_qldpc)
    with pytest.warns(UserWarning, match=r"pip install 'rlsuite\[qcode\]'"):
        env = WeightReductionVectorEnv(code="steane")
    assert env._start_distances == [3.0]  # the estimate, an upper bound


# -- the search model (rlsuite.model; the generic protocol tests are tests/core/test_model.py) --
def test_the_same_state_gives_the_same_reward_twice_and_in_any_env() -> None:
    """The distance estimate is keyed by the code, not by (seed, episode, step): one state and
    move give one reward, in step_from, twice in a row, in another env and in step."""
    kwargs = {"code": "steane", "growth": 4, "max_steps": 3, "w_target": 3, "q_target": 3}
    env = WeightReductionVectorEnv(num_envs=1, **kwargs)
    env.reset(seed=0)
    state = env.get_state()
    gauge = torch.tensor([env.move_to_action(moves.Move.gauge(0, "x"))])
    first, second = env.step_from(state, gauge), env.step_from(state, gauge)
    start = named_code("steane")
    expected = excess(start, 3, 3) - excess(moves.gauge_check(start, 0, "x"), 3, 3) - 1 / 7 - 1 / 3
    assert float(first.rewards[0]) == float(second.rewards[0]) == pytest.approx(expected, abs=1e-6)
    assert first.next_states.distance.tolist() == second.next_states.distance.tolist() == [2.0]
    assert not bool(first.next_states.distance_exact[0])  # the estimate, not an end-of-episode d
    other = WeightReductionVectorEnv(num_envs=3, **kwargs)
    other.reset(seed=17)
    other.step(np.full(3, other.num_actions - 1))  # other episodes, other steps
    other.set_state(state, 1)
    stop = other.num_actions - 1
    _, reward, _, _, info = other.step(np.array([stop, int(gauge[0]), stop]))
    assert float(reward[1]) == float(first.rewards[0]) and float(info["distance"][1]) == 2.0


def test_random_moves_give_the_same_rewards_from_the_same_states() -> None:
    """Estimates only (no exact distance): every reward repeats exactly."""
    env = WeightReductionVectorEnv(
        num_envs=4, code="toric:3", growth=4, max_steps=50, exact_distance_max_qubits=0
    )
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    distances = set()
    for _ in range(3):
        state = env.get_state()
        masks = env.action_masks().numpy()
        masks[:, -1] = False
        actions = torch.as_tensor(sample_legal(masks, rng))
        a, b = env.step_from(state, actions), env.step_from(state.clone(), actions)
        assert torch.equal(a.rewards, b.rewards)
        assert torch.equal(a.next_states.distance, b.next_states.distance)
        _, reward, _, _, _ = env.step(actions)
        assert torch.equal(reward, a.rewards)
        distances.update(a.next_states.distance.tolist())
    assert distances <= {2.0, 3.0} and 3.0 in distances
    codes = list(env.codes)
    alone = [env._estimate([c])[0] for c in codes]
    np.testing.assert_array_equal(env._estimate(codes[::-1])[::-1], alone)  # batch-independent
    assert code_key(named_code("toric:3")) == code_key(named_code("toric:3"))
    assert code_key(named_code("toric:3")) != code_key(named_code("toric:2"))


def test_ended_states_stay_put_and_the_model_has_no_time_limit() -> None:
    env = WeightReductionVectorEnv(num_envs=1, code="toric:2", growth=6, max_steps=1, w_target=3)
    env.reset(seed=0)
    state = env.get_state()
    assert isinstance(state, WeightReductionState) and state.hx.shape == (1, 24, 48)
    stop = torch.tensor([env.num_actions - 1])
    stopped = env.step_from(state, stop)
    assert stopped.terminated.tolist() == [True] and float(stopped.rewards[0]) == 0.0
    assert stopped.next_states.ended.tolist() == [True]
    assert stopped.next_states.episode_step.tolist() == [1]
    assert stopped.next_states.distance_exact.tolist() == [True]  # the end-of-episode distance
    again = env.step_from(stopped.next_states, stop)
    assert again.terminated.tolist() == [False] and float(again.rewards[0]) == 0.0
    copy = torch.tensor([env.move_to_action(moves.Move.copy(0, "x"))])
    first = env.step_from(state, copy)  # t reaches max_steps: the env would truncate here
    assert first.next_states.t.tolist() == [1] and not bool(first.terminated[0])
    assert first.next_states.distance_exact.tolist() == [True]
    second = env.step_from(first.next_states, copy)  # ...the model goes on
    assert second.next_states.t.tolist() == [2] and second.next_states.num_qubits.tolist() == [10]


def test_states_of_other_starting_codes_or_padding_are_refused() -> None:
    pad = {"max_qubits": 40, "max_checks": 40}
    env = WeightReductionVectorEnv(num_envs=1, code="toric:2", **pad)
    steane = WeightReductionVectorEnv(num_envs=1, code="steane", **pad)
    wider = WeightReductionVectorEnv(num_envs=1, code="toric:2", max_qubits=41, max_checks=40)
    for other in (env, steane, wider):
        other.reset(seed=0)
    with pytest.raises(ValueError, match=r"starts from a code this env does not start from"):
        env.set_state(steane.get_state())
    with pytest.raises(ValueError, match=r"starts from a code"):
        env.step_from(steane.get_state(), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"padded to \(40, 41\), this env's to \(40, 40\)"):
        env.observe_states(wider.get_state())
    with pytest.raises(ValueError, match=r"masked WeightReduction action — position 0"):
        env.step_from(env.get_state(), torch.tensor([39]))  # copy of a qubit the code lacks


def test_a_checkpoint_keeps_ended_and_old_checkpoints_load_with_a_warning() -> None:
    kwargs = {"code": "steane", "growth": 4, "w_target": 3, "q_target": 3}
    env = WeightReductionVectorEnv(num_envs=2, **kwargs)
    env.reset(seed=0)
    gauge = env.move_to_action(moves.Move.gauge(0, "x"))
    env.step(np.array([gauge, env.num_actions - 1]))
    saved = env.state_dict()
    restored = WeightReductionVectorEnv(num_envs=2, **kwargs)
    restored.load_state_dict(saved)
    a, b = env.get_state(), restored.get_state()
    for name in ("hx", "hz", "t", "distance", "stopped", "ended", "start_key"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert b.ended.tolist() == [False, True] and b.episode_step.tolist() == [1, 1]
    old = {k: v for k, v in saved.items() if k != "ended"}
    with pytest.warns(UserWarning, match="predates the search model"):
        restored.load_state_dict(old)
    assert restored.get_state().ended.tolist() == [False, True]


@pytest.mark.parametrize("start", ["hgp:hamming:3", "toric:3", "steane"])
def test_the_fast_masks_and_cached_distances_equal_the_reference_path(start: str) -> None:
    """Over random legal episodes: every mask equals ``mask_reference`` (``moves.is_legal`` and
    ``fits`` per coning) and every reported distance estimate equals a fresh, uncached one of the
    same code; a cached mask is read-only."""
    env = WeightReductionVectorEnv(
        num_envs=4,
        code=start,
        growth=4,
        max_steps=8,
        w_target=1,
        q_target=1,
        exact_distance_max_qubits=0,
    )
    _, info = env.reset(seed=2)
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(8):
        masks = info["action_mask"].numpy()
        for i, code in enumerate(env.codes):
            np.testing.assert_array_equal(masks[i], env.mask_reference(code))
            fresh = env._estimate_batch([code])[0]
            assert env.distance[i] == fresh
            checked += 1
        with pytest.raises(ValueError, match="read-only"):
            env._mask_one(env.codes[0])[0] = True
        moves_left = masks[:, :-1].any(1)
        masks = masks.copy()
        masks[:, -1] = ~moves_left
        _, _, _, _, info = env.step(sample_legal(masks, rng))
    assert checked == 32
