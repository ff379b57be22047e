"""Any sequence of reset / step / close calls on a family's single env, with legal, illegal and
malformed actions, either behaves as gymnasium's API says or raises a ValueError, TypeError or
RuntimeError from rlsuite's own code that names the problem: never a silent continuation, a
NaN, or an error from inside numpy or torch. A refused action leaves the env as it was."""

from __future__ import annotations

import traceback
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rlsuite  # noqa: F401

# one id per family (and the masked qcode one), small enough for many calls
FAMILIES: dict[str, dict[str, Any]] = {
    "rlsuite/SOR-ShiftedLaplacian-v0": {"sequence_length": 3, "n": 6},
    "rlsuite/SOR-ShiftedLaplacianContinuous-v0": {"sequence_length": 3, "n": 6},
    "rlsuite/ThreeBody-v0": {"max_steps": 3, "interval": 0.05},
    "rlsuite/CoRMAB-Budget-v0": {"num_arms": 4, "budget": 2, "horizon": 3},
    "rlsuite/MallocGame-v0": {"num_buffers": 6},
    "rlsuite/QCode-TannerEdit-v0": {"num_checks": 3, "num_bits": 4, "max_steps": 3},
}
MALFORMED = [2**70, -(2**70), "1.5", "a", 1.5, float("nan"), float("inf"), None, [1, 2], -1,
             10**6, True, np.array([[0, 1], [1, 0]]), {"a": 1}]  # fmt: skip
ALLOWED_ERRORS = (ValueError, TypeError, RuntimeError)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reset"), st.integers(0, 5)),
        st.tuples(st.just("legal"), st.integers(0, 10**6)),
        st.tuples(st.just("illegal"), st.integers(0, 10**6)),
        st.tuples(st.just("malformed"), st.sampled_from(range(len(MALFORMED)))),
    ),
    min_size=1,
    max_size=12,
)


def legal_action(env: gym.Env, draw: int) -> Any:
    core = env.unwrapped.core
    rng = np.random.default_rng(draw)
    if core.has_action_mask:
        return int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
    if hasattr(core, "sample_feasible"):
        return core.sample_feasible(rng, 0)
    env.action_space.seed(draw)
    return env.action_space.sample()


def illegal_action(env: gym.Env, draw: int) -> Any | None:
    """An action of the right type and shape that the env refuses in its state (None if none)."""
    core = env.unwrapped.core
    if core.has_action_mask:
        refused = np.flatnonzero(~env.unwrapped.action_masks())
        return None if refused.size == 0 else int(refused[draw % refused.size])
    if hasattr(core, "sample_feasible"):
        ones = np.ones(env.action_space.shape)
        return None if core.is_feasible(ones, 0) else ones
    if isinstance(env.action_space, gym.spaces.Box):
        return np.full(env.action_space.shape, env.action_space.high + 1.0, dtype=np.float32)
    return int(env.action_space.n) + draw % 3


def is_a_valid_box_action(env: gym.Env, action: Any) -> bool:
    """A scalar in range is a valid action of a one-element Box (as the env documents)."""
    space = env.action_space
    if not isinstance(space, gym.spaces.Box) or space.shape != (1,):
        return False
    try:
        value = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return value.shape in ((), (1,)) and space.contains(value.reshape(1).astype(space.dtype))


def raised_by_rlsuite(err: BaseException) -> bool:
    """Whether the innermost frame of ``err``'s traceback is in rlsuite's own code."""
    frames = traceback.extract_tb(err.__traceback__)
    path = frames[-1].filename.replace("\\", "/")
    return "/rlsuite/" in path or "/envs/" in path or "/agents/" in path


def check_step_result(env: gym.Env, result: tuple) -> bool:
    obs, reward, terminated, truncated, info = result
    assert env.observation_space.contains(obs), f"observation {obs} outside {env.observation_space}"
    assert isinstance(reward, float) and np.isfinite(reward), f"reward {reward!r}"
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    assert isinstance(info, dict)
    return terminated or truncated


@pytest.mark.parametrize("env_id", list(FAMILIES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_any_call_sequence_behaves_or_names_the_problem(env_id: str, ops: list) -> None:
    env = gym.make(env_id, **FAMILIES[env_id]).unwrapped
    running = False
    for op, value in ops:
        if op == "reset":
            obs, info = env.reset(seed=value)
            assert env.observation_space.contains(obs) and isinstance(info, dict)
            running = True
            continue
        if op == "legal":
            action = legal_action(env, value) if running else 0
        elif op == "illegal":
            action = illegal_action(env, value) if running else None
            if action is None:
                continue
        else:
            action = MALFORMED[value]
            if is_a_valid_box_action(env, action):  # e.g. ω = 1.5 on the continuous SOR env
                continue
        before = env.core.state_dict() if running else None
        try:
            ended = check_step_result(env, env.step(action))
        except ALLOWED_ERRORS as err:
            assert raised_by_rlsuite(err), f"{type(err).__name__} from outside rlsuite: {err}"
            message = str(err).lower()
            assert "action" in message or "reset" in message, f"{type(err).__name__}: {err}"
            if before is not None:  # a refused step changes nothing
                after = env.core.state_dict()
                assert all(np.array_equal(before[k], after[k]) for k in before), op
            continue
        assert running and op == "legal", f"{op} action {action!r} was accepted"
        running = not ended
    env.close()
