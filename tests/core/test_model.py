"""The search-model protocol (rlsuite.model) on every id that has one, the base class's episode
counter and autoreset, and check_env on every id with its default kwargs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from gymnasium.utils.env_checker import check_env

import rlsuite  # noqa: F401  (registers the ids)
from rlsuite.model import BatchState
from rlsuite.registry import ENVS, ids_with_model
from rlsuite.vector import BatchedVectorEnv, sample_legal

# small instances so that the episodes end within the tests; OTHER is an env whose states are
# not valid here (another instance or size)
SMALL: dict[str, dict[str, Any]] = {
    "rlsuite/MallocGame-v0": {"num_buffers": 10},
    "rlsuite/MallocPack-v0": {"num_buffers": 10},
    "rlsuite/QCode-TannerEdit-v0": {"num_checks": 4, "num_bits": 6, "max_steps": 5},
    # w_target=3: toric:2 meets the default targets, so every first move would succeed
    "rlsuite/QCode-WeightReduction-v0": {"code": "toric:2", "max_steps": 4, "w_target": 3},
}
OTHER: dict[str, dict[str, Any]] = {
    "rlsuite/MallocGame-v0": {"num_buffers": 10, "instance_seed": 1},
    "rlsuite/MallocPack-v0": {"num_buffers": 10, "instance_seed": 1},
    "rlsuite/QCode-TannerEdit-v0": {"num_checks": 5, "num_bits": 6, "max_steps": 5},
    "rlsuite/QCode-WeightReduction-v0": {"code": "steane", "max_steps": 4},
}
MODEL_IDS = ids_with_model()


def make(env_id: str, num_envs: int, **kwargs: Any) -> BatchedVectorEnv:
    return gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    ).unwrapped  # type: ignore[return-value]


def legal_actions(env: BatchedVectorEnv, rng: np.random.Generator) -> torch.Tensor:
    return torch.as_tensor(sample_legal(env.action_masks().cpu().numpy(), rng))


def test_the_registry_flag_matches_the_classes() -> None:
    for entry in ENVS.values():
        cls = gym.spec(entry.id).vector_entry_point
        module, _, name = str(cls).partition(":")
        klass = getattr(__import__(module, fromlist=[name]), name)
        assert klass.has_model is entry.has_model, entry.id
    assert {"rlsuite/MallocGame-v0", "rlsuite/MallocPack-v0"} <= set(MODEL_IDS)


@pytest.mark.parametrize("env_id", MODEL_IDS)
def test_step_from_gives_exactly_what_step_gives(env_id: str) -> None:
    """Random legal actions across episode ends: the model's transition of the env's own state
    equals the env's step (observation, reward, termination, mask); the env is untouched by it."""
    env = make(env_id, 3, **SMALL[env_id])
    rng = np.random.default_rng(0)
    env.reset(seed=5)
    checked = ended = 0
    for _ in range(14):
        state = env.get_state()
        assert isinstance(state, BatchState) and len(state) == 3
        torch.testing.assert_close(state.episode_step, env.episode_step, rtol=0, atol=0)
        actions = legal_actions(env, rng)
        before = env.state_dict()
        model = env.step_from(state, actions)
        after = env.state_dict()
        assert before.keys() == after.keys()
        for key in before:
            assert torch.equal(before[key], after[key]), f"step_from changed the env's {key}"
        acting = ~env._needs_reset.clone()
        obs, reward, terminated, _, info = env.step(actions)
        rows = torch.nonzero(acting).flatten()
        observed = env.observe_states(model.next_states)
        assert torch.equal(observed[rows], obs[rows])
        assert torch.equal(model.rewards[rows], reward[rows])
        assert model.rewards.dtype == reward.dtype
        assert torch.equal(model.terminated[rows], terminated[rows])
        assert torch.equal(model.next_action_masks[rows], info["action_mask"][rows])
        torch.testing.assert_close(
            model.next_states.episode_step[rows], env.episode_step[rows], rtol=0, atol=0
        )
        checked += len(rows)
        ended += int((~acting).sum())
    assert checked >= 30 and ended >= 1, (checked, ended)


@pytest.mark.parametrize("env_id", MODEL_IDS)
def test_set_state_round_trips_and_reset_starts_from_a_state(env_id: str) -> None:
    env = make(env_id, 2, **SMALL[env_id])
    rng = np.random.default_rng(1)
    env.reset(seed=0)
    env.step(legal_actions(env, rng))
    saved, saved_obs = env.get_state(), env.observe_states(env.get_state())
    saved_dict = env.state_dict()
    env.step(legal_actions(env, rng))
    env.set_state(saved)
    restored = env.state_dict()
    for key in ("episode_step", "needs_reset"):
        assert torch.equal(restored[key], saved_dict[key]), key
    assert torch.equal(env.observe_states(env.get_state()), saved_obs)
    # one env only, by index; then a reset of env 1 from env 0's position
    env.set_state(saved.select([1]), 1)
    obs, info = env.reset(options={"state": saved.select([0]), "reset_mask": [False, True]})
    assert torch.equal(obs[1], saved_obs[0])
    assert int(env.episode_step[1]) == int(saved.episode_step[0]) == 1
    assert torch.equal(info["action_mask"][1], env.action_masks()[1])


@pytest.mark.parametrize("env_id", MODEL_IDS)
def test_foreign_and_malformed_states_are_refused(env_id: str) -> None:
    env = make(env_id, 2, **SMALL[env_id])
    other = make(env_id, 2, **OTHER[env_id])
    env.reset(seed=0)
    other.reset(seed=0)
    with pytest.raises(ValueError):
        env.set_state(other.get_state())
    with pytest.raises(ValueError):
        env.step_from(other.get_state(), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="holds 2 positions, expected 1"):
        env.set_state(env.get_state(), 0)
    with pytest.raises(TypeError, match="expected a batch of states"):
        env.set_state({"not": "a state"})
    with pytest.raises(ValueError, match="index must be an env index"):
        env.get_state(5)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"stat": env.get_state()})


def test_an_env_without_a_model_names_the_ids_with_one() -> None:
    env = make("rlsuite/SOR-ShiftedLaplacian-v0", 2)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"has no search model.*rlsuite/MallocGame-v0"):
        env.get_state()
    with pytest.raises(TypeError, match="has no search model"):
        env.reset(options={"state": object()})


def test_the_single_env_serves_the_model() -> None:
    env = gym.make("rlsuite/MallocGame-v0", num_buffers=10)
    obs, _ = env.reset(seed=0)
    start = env.unwrapped.get_state()
    env.step(0)
    obs_again, _ = env.reset(options={"state": start})
    np.testing.assert_array_equal(obs_again, obs)
    np.testing.assert_array_equal(env.unwrapped.observe_states(start)[0].numpy(), obs)


# -- episodes and autoreset in the base class ---------------------------------------------------
ALL_IDS = list(ENVS)
QUICK: dict[str, dict[str, Any]] = {
    **SMALL,
    "rlsuite/SOR-ShiftedLaplacian-v0": {"sequence_length": 3},
    "rlsuite/SOR-ShiftedLaplacianContinuous-v0": {"sequence_length": 3},
    "rlsuite/SOR-Heat2D-v0": {"sequence_length": 3},
    "rlsuite/ThreeBody-v0": {"max_steps": 3},
    "rlsuite/ThreeBody-Leapfrog-v0": {"max_steps": 3},
    **{i: {"horizon": 3} for i in ALL_IDS if "CoRMAB" in i},
}


# SOR-SparseSequence has no default systems: they are the user's
DEFAULT_KWARGS = {
    "rlsuite/SOR-SparseSequence-v0": {
        "matrices": [
            sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(8, 8), format="csr"),
            sp.diags([-1.0, 3.0, -1.0], [-1, 0, 1], shape=(8, 8), format="csr"),
        ]
    }
}


def play_until_an_env_ends(env: BatchedVectorEnv, rng: np.random.Generator) -> None:
    for _ in range(60):
        if bool(env._needs_reset.any()):
            return
        env.step(random_actions(env, rng))
    raise AssertionError("no episode ended")


def random_actions(env: BatchedVectorEnv, rng: np.random.Generator) -> Any:
    if env.has_action_mask:
        return legal_actions(env, rng)
    if hasattr(env, "sample_feasible"):
        return np.stack([env.sample_feasible(rng, i) for i in range(env.num_envs)])
    env.action_space.seed(int(rng.integers(1 << 30)))
    return env.action_space.sample()


def illegal_actions(env: BatchedVectorEnv) -> Any | None:
    """Per env an action that the env refuses in its current state, or None if there is none."""
    if env.has_action_mask:
        masks = env.action_masks()
        if bool(masks.all(1).any()):
            return None
        return (~masks).to(torch.int8).argmax(1)
    if hasattr(env, "sample_feasible"):
        ones = np.ones(env.single_action_space.shape)
        if all(env.is_feasible(ones, i) for i in range(env.num_envs)):
            return None
        return np.stack([ones] * env.num_envs)
    return None


@pytest.mark.parametrize("env_id", [i for i in ALL_IDS if i != "rlsuite/SOR-SparseSequence-v0"])
def test_episode_step_and_the_autoreset_step_ignores_an_illegal_action(env_id: str) -> None:
    env = make(env_id, 2, **QUICK.get(env_id, {}))
    rng = np.random.default_rng(3)
    env.reset(seed=0)
    assert env.episode_step.tolist() == [0, 0]
    env.step(random_actions(env, rng))
    assert env.episode_step.tolist() == [1, 1]
    play_until_an_env_ends(env, rng)
    ended = env._needs_reset.clone()
    steps_before = env.episode_step.clone()
    bad = illegal_actions(env)
    if bad is None:  # every action is legal here (SOR, three-body): nothing to ignore
        assert not env.has_action_mask and not hasattr(env, "sample_feasible")
        bad = random_actions(env, rng)
    else:  # the acting envs play a legal action; the ended ones an illegal one
        legal = torch.as_tensor(np.asarray(random_actions(env, rng)))
        bad = torch.as_tensor(np.asarray(bad)).to(legal.dtype)
        bad = torch.where(ended.reshape(-1, *[1] * (legal.ndim - 1)), bad, legal)
    episodes = env.episode_index.clone()
    _, reward, terminated, truncated, _ = env.step(bad)
    assert torch.equal(env.episode_index, episodes + ended.long())
    assert torch.equal(env.episode_step, torch.where(ended, 0, steps_before + 1))
    assert not bool((terminated | truncated)[ended].any())
    assert bool((reward[ended] == 0).all())
    state = env.state_dict()
    fresh = make(env_id, 2, **QUICK.get(env_id, {}))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.episode_step, env.episode_step)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_with_default_kwargs(env_id: str) -> None:
    env = gym.make(env_id, **DEFAULT_KWARGS.get(env_id, {}))
    env.action_space.seed(0)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ["rlsuite/SOR-ShiftedLaplacian-v0", "rlsuite/MallocGame-v0"])
def test_the_single_env_refuses_steps_after_the_end(env_id: str) -> None:
    env = gym.make(env_id, **QUICK.get(env_id, {})).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(100):
        mask = getattr(env.core, "has_action_mask", False)
        action = int(sample_legal(env.action_masks()[None], rng)[0]) if mask else 0
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    else:
        raise AssertionError("the episode did not end")
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset()
    env.step(0)
