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
import difflib
import math
import os
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import scipy.sparse
import torch

from rlsuite.vector import resolve_device


def _seconds(step: Callable[[], object], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


#: Steps measured at least per size, however long one step takes (a rate over a single step
#: of a large batch would mostly time its first-step effects).
MIN_STEPS = 5


def _steps_within(step: Callable[[], object], min_seconds: float) -> tuple[int, float]:
    steps, start = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and steps >= MIN_STEPS:
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


def _check_arguments(env_id: str, num_envs: Sequence[int], device: str, min_seconds: float) -> None:
    """Every argument checked before any env is built (one-line errors naming the flag)."""
    from rlsuite.registry import ENVS

    if env_id not in ENVS and env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(ENVS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown environment {env_id!r}{hint}; `rlsuite list` shows the known ids"
        )
    if not num_envs or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in num_envs
    ):
        raise ValueError(f"--num-envs needs positive ints, got {list(num_envs)!r}")
    if not isinstance(min_seconds, (int, float)) or not (
        math.isfinite(min_seconds) and min_seconds >= 0
    ):
        raise ValueError(
            f"--min-seconds must be a finite number of seconds >= 0, got {min_seconds!r}"
        )
    resolve_device(device)


def _resident_bytes(obj: Any, seen: set[int], depth: int = 0) -> int:
    """Bytes of the tensors, arrays and sparse matrices reachable from ``obj``'s attributes."""
    if id(obj) in seen or depth > 8:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if scipy.sparse.issparse(obj):
        parts = ("data", "indices", "indptr", "row", "col")
        return sum(int(getattr(obj, k).nbytes) for k in parts if hasattr(obj, k))
    if isinstance(obj, dict):
        values: Any = obj.values()
    elif isinstance(obj, (list, tuple)):
        values = obj
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        values = vars(obj).values()
    else:
        return 0
    return sum(_resident_bytes(v, seen, depth + 1) for v in values)


def _measured_bytes(make: Callable[[], Any]) -> int:
    """Python allocations (tracemalloc: numpy included) plus tensors of one reset env."""
    tracemalloc.start()
    try:
        env = make()
        env.reset(seed=0)
        python_bytes = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    total = python_bytes + _resident_bytes(env, set())
    env.close()
    return total


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


_MEASURED_SIZES = (1, 64)


def check_memory(
    env_id: str, num_envs: int, *, device: str = "cpu", env_kwargs: dict[str, Any] | None = None
) -> int:
    """Estimated bytes for ``num_envs`` native envs plus ``num_envs`` single envs in a
    ``SyncVectorEnv``, extrapolated from native batches of 1 and 64 and one single env;
    a ``ValueError`` with the estimate when it exceeds the memory available now."""
    kwargs = dict(env_kwargs or {})

    def native(n: int) -> Callable[[], Any]:
        return lambda: _batched_env(env_id, n, device, kwargs)

    small, large = (_measured_bytes(native(n)) for n in _MEASURED_SIZES)
    per_native = max((large - small) / (_MEASURED_SIZES[1] - _MEASURED_SIZES[0]), 0.0)
    per_single = _measured_bytes(lambda: gym.make(env_id, **kwargs))
    estimate = int(small + num_envs * (per_native + per_single))
    available = _available_bytes()
    if available is not None and estimate > available:
        raise ValueError(
            f"--num-envs {num_envs}: about {estimate / 2**30:.3g} GiB estimated "
            f"({(per_native + per_single) / 1024:.3g} KiB per env: the native batch's state "
            f"measured at {_MEASURED_SIZES[0]} and {_MEASURED_SIZES[1]} envs plus one single "
            f"env for SyncVectorEnv), more than the {available / 2**30:.3g} GiB available; "
            "choose fewer envs"
        )
    return estimate


def _batched_env(env_id: str, num_envs: int, device: str, kwargs: dict[str, Any]) -> Any:
    """The batched env rlsuite trains on: the id's native one, or for a gymnasium id without
    one the single env in a Python loop (``SingleEnvBatch``, slower than SyncVectorEnv)."""
    from rlsuite.config import EnvConfig
    from rlsuite.training import make_env

    return make_env(EnvConfig(id=env_id, kwargs=dict(kwargs)), num_envs=num_envs, device=device)


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
    """Steps per second of the native env and of ``SyncVectorEnv``, and their ratio, per size.

    Arguments are checked before any env is built; sizes above 64 envs are first refused if
    their memory estimate (:func:`check_memory`) exceeds the memory available."""
    _check_arguments(env_id, num_envs, device, min_seconds)
    kwargs = dict(env_kwargs or {})
    if max(num_envs) > _MEASURED_SIZES[1]:
        check_memory(env_id, max(num_envs), device=device, env_kwargs=kwargs)
    rows, masked, feasible = [], False, False
    for n in num_envs:
        native = _batched_env(env_id, n, device, kwargs)
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
