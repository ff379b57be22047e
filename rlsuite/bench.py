"""``rlsuite bench``: the native batched env against ``SyncVectorEnv`` of the single env.

Both run in the same process on the same seeds and random actions; the figure reported is
the ratio of env steps per second (machines are shared and noisy, so absolute times are
printed for context only). Each measurement steps until ``min_seconds`` have passed (at least
one step), so large batches of a slow single env do not take forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import torch

from rlsuite.vector import resolve_device


def _rate(step: Callable[[], object], num_envs: int, min_seconds: float) -> float:
    step()  # warm-up (caches, lazy imports)
    steps, start = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return steps * num_envs / elapsed


def _native_actions(env: gym.vector.VectorEnv) -> torch.Tensor:
    return torch.as_tensor(env.action_space.sample(), device=env.device)


def benchmark_env(
    env_id: str,
    num_envs: Sequence[int] = (1, 64, 1024),
    *,
    device: str = "cpu",
    min_seconds: float = 2.0,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Steps per second of the native env and of ``SyncVectorEnv``, and their ratio, per size."""
    resolve_device(device)
    kwargs = dict(env_kwargs or {})
    rows = []
    for n in num_envs:
        native = gym.make_vec(
            env_id, num_envs=n, vectorization_mode="vector_entry_point", device=device, **kwargs
        )
        sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", **kwargs)
        native.reset(seed=seed)
        sync.reset(seed=seed)
        native.action_space.seed(seed)
        sync.action_space.seed(seed)
        native_rate = _rate(lambda env=native: env.step(_native_actions(env)), n, min_seconds)
        sync_rate = _rate(lambda env=sync: env.step(env.action_space.sample()), n, min_seconds)
        rows.append(
            {
                "num_envs": n,
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
        "results": rows,
    }
