"""``rlsuite bench``: the native batched env against ``SyncVectorEnv`` of the single env.

Both run in the same process on the same seeds and the same sequence of actions (uniformly
random, or one fixed action with ``action=``; for envs that publish ``info["action_mask"]``,
uniformly random *legal* actions drawn from each side's own mask with the same random numbers,
so both play the same games; for envs with a combinatorial feasible set that publish
``sample_feasible`` (coRMAB), random *feasible* actions drawn the same way); the figure reported is the ratio of env steps
per second (machines are shared and noisy, so absolute times are
printed for context only). ``SyncVectorEnv`` steps until ``min_seconds`` have passed (at least
one step), then the native env runs exactly the same steps, so both solve the same instances.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlsuite.vector import resolve_device


def _seconds(step: Callable[[], object], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def _steps_within(step: Callable[[], object], min_seconds: float) -> tuple[int, float]:
    steps, start = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return steps, elapsed


def _stepper(
    env: gym.vector.VectorEnv, draw: Callable[[], Any], device: torch.device | None = None
) -> Callable[[], object]:
    if device is None:
        return lambda: env.step(draw())
    return lambda: env.step(torch.as_tensor(draw(), device=device))


def _masked_stepper(
    env: gym.vector.VectorEnv, info: dict[str, Any], seed: int, device: torch.device | None
) -> Callable[[], object]:
    """Step with a uniformly random legal action per env, read from ``info["action_mask"]``."""
    rng = np.random.default_rng(seed)
    mask = [info["action_mask"]]

    def step() -> object:
        legal = np.asarray(mask[0].cpu() if isinstance(mask[0], torch.Tensor) else mask[0])
        actions = np.argmax(rng.random(legal.shape) + legal, axis=1)  # legal entries are >= 1
        result = env.step(actions if device is None else torch.as_tensor(actions, device=device))
        mask[0] = result[-1]["action_mask"]
        return result

    return step


def _feasible_stepper(
    env: gym.vector.VectorEnv,
    sample: Callable[[np.random.Generator, int], np.ndarray],
    seed: int,
    device: torch.device | None,
) -> Callable[[], object]:
    """Step with a random *feasible* action per env, ``sample(rng, i)`` for env ``i`` (the
    coRMAB envs' ``sample_feasible``: their action sets are combinatorial constraints, and a
    uniformly random MultiBinary action breaks them and is refused)."""
    rng = np.random.default_rng(seed)

    def step() -> object:
        actions = np.stack([sample(rng, i) for i in range(env.num_envs)])
        return env.step(actions if device is None else torch.as_tensor(actions, device=device))

    return step


def _feasible_samplers(
    native: gym.vector.VectorEnv, sync: gym.vector.SyncVectorEnv
) -> tuple[Callable[[np.random.Generator, int], np.ndarray], ...] | None:
    """``(native, sync)`` samplers of random feasible actions when the env publishes
    ``sample_feasible`` (the native env as ``sample_feasible(rng, index)``, each single env as
    ``sample_feasible(rng)``), else ``None``."""
    core = native.unwrapped
    if not hasattr(core, "sample_feasible"):
        return None
    singles = [single.unwrapped for single in sync.envs]
    return core.sample_feasible, lambda rng, i: singles[i].sample_feasible(rng)


def _action_stream(space: gym.Space, seed: int, action: Any | None) -> Callable[[], Any]:
    """Batched actions: the same sequence for every call of this function with the same seed."""
    if action is not None:
        fixed = np.stack([np.asarray(action)] * space.shape[0])
        return lambda: fixed
    stream = copy.deepcopy(space)
    stream.seed(seed)
    return stream.sample


def benchmark_env(
    env_id: str,
    num_envs: Sequence[int] = (1, 64, 1024),
    *,
    device: str = "cpu",
    min_seconds: float = 2.0,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    action: Any | None = None,
) -> dict[str, Any]:
    """Steps per second of the native env and of ``SyncVectorEnv``, and their ratio, per size."""
    resolve_device(device)
    kwargs = dict(env_kwargs or {})
    rows, masked, feasible = [], False, False
    for n in num_envs:
        native = gym.make_vec(
            env_id, num_envs=n, vectorization_mode="vector_entry_point", device=device, **kwargs
        )
        sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", **kwargs)
        _, native_info = native.reset(seed=seed)
        _, sync_info = sync.reset(seed=seed)
        # The slow side sets the number of steps; the native env then runs exactly those steps
        # (same seeds and actions, hence the same systems), after one warm-up step each.
        masked = action is None and "action_mask" in sync_info
        samplers = _feasible_samplers(native, sync) if action is None and not masked else None
        if masked:
            sync_step = _masked_stepper(sync, sync_info, seed, None)
            native_step = _masked_stepper(native, native_info, seed, native.device)
        elif samplers is not None:
            feasible = True
            native_step = _feasible_stepper(native, samplers[0], seed, native.device)
            sync_step = _feasible_stepper(sync, samplers[1], seed, None)
        else:
            sync_step = _stepper(sync, _action_stream(sync.action_space, seed, action))
            native_step = _stepper(
                native, _action_stream(sync.action_space, seed, action), native.device
            )
        sync_step()
        native_step()
        steps, sync_seconds = _steps_within(sync_step, min_seconds)
        native_seconds = _seconds(native_step, steps)
        native_rate, sync_rate = steps * n / native_seconds, steps * n / sync_seconds
        rows.append(
            {
                "num_envs": n,
                "steps": steps,
                "native_steps_per_s": native_rate,
                "sync_vector_steps_per_s": sync_rate,
                "speedup": native_rate / sync_rate,
            }
        )
        native.close()
        sync.close()
    return {
        "env_id": env_id,
        "device": device,
        "baseline": "gymnasium.vector.SyncVectorEnv",
        "actions": _describe_actions(action, masked, feasible),
        "results": rows,
    }


def _describe_actions(action: Any | None, masked: bool, feasible: bool) -> str:
    if action is not None:
        return f"fixed {action!r}"
    if masked:
        return "uniformly random legal (action_mask)"
    if feasible:
        return "random feasible (sample_feasible)"
    return "uniformly random"
