"""Torch thread counts on every family's batched core; prints one JSON document.

For each family's core (``--ids``) at each batch size (``--sizes``), env steps per second with
``torch.set_num_threads(1)`` and ``(2)`` (``--threads``), measured in alternating rounds
(``--rounds``, the median kept) on an otherwise idle machine and again beside a busy process (a
Python loop pinned to nothing, as another job on the machine would be). The figure is the ratio
of each thread count's rate to one thread's: what the CLI's default of one thread
(:mod:`rlsuite.threads`) gives up or saves. Actions: random legal ones on masked envs, a fixed
feasible one on coRMAB (the env's idle action, so Python sampling does not dominate), the largest
η on three-body (``FIXED_ACTIONS``), random ones elsewhere, the same stream for every thread count.

Usage: ``python benchmarks/threads.py [--sizes 1,64,1024,4096] [--ids ...] [--seconds 0.5]``.
"idle" means no other process of this benchmark; on a shared machine say what else ran.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlsuite  # noqa: F401
from rlsuite.vector import BatchedVectorEnv, sample_legal

IDS = (
    "rlsuite/SOR-ShiftedLaplacian-v0",
    "rlsuite/ThreeBody-v0",
    "rlsuite/CoRMAB-Budget-v0",
    "rlsuite/MallocGame-v0",
    "rlsuite/QCode-TannerEdit-v0",
)


#: Fixed actions per id: the three-body env's largest η (its cheapest step), as
#: ``benchmarks/threebody.py`` plays, so a step measures the core rather than the slowest
#: system of the batch at the smallest random η.
FIXED_ACTIONS = {"rlsuite/ThreeBody-v0": 9}


def stepper(env: BatchedVectorEnv, seed: int, env_id: str = "") -> Callable[[], object]:
    """One env step with the family's kind of action (see the module docstring)."""
    rng = np.random.default_rng(seed)
    if env_id in FIXED_ACTIONS:
        fixed_action = torch.full((env.num_envs,), FIXED_ACTIONS[env_id])
        return lambda: env.step(fixed_action)
    if env.has_action_mask:
        return lambda: env.step(torch.as_tensor(sample_legal(env._masks_numpy(), rng)))
    if hasattr(env, "sample_feasible"):
        fixed = env._idle_actions()
        return lambda: env.step(fixed)
    space = env.action_space
    space.seed(seed)
    return lambda: env.step(space.sample())


def rate(env: BatchedVectorEnv, threads: int, seconds: float, env_id: str) -> float:
    """Env steps per second (summed over the batch) over at least ``seconds``."""
    torch.set_num_threads(threads)
    step = stepper(env, 0, env_id)
    step()  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        step()
        steps += 1
    return steps * env.num_envs / (time.perf_counter() - start)


def measure(env_id: str, size: int, counts: list[int], rounds: int, seconds: float) -> dict:
    env = gym.make_vec(env_id, num_envs=size, vectorization_mode="vector_entry_point").unwrapped
    env.reset(seed=0)
    rates: dict[int, list[float]] = {c: [] for c in counts}
    for _ in range(rounds):
        for count in counts:
            rates[count].append(rate(env, count, seconds, env_id))
    base = statistics.median(rates[1])
    return {
        "steps_per_s_1_thread": base,
        **{f"ratio_{c}_threads": statistics.median(r) / base for c, r in rates.items() if c != 1},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", default=",".join(IDS))
    parser.add_argument("--sizes", default="1,64,1024,4096")
    parser.add_argument("--threads", default="1,2", help="thread counts (1 is the reference)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement")
    parser.add_argument("--conditions", default="idle,busy")
    args = parser.parse_args()
    counts = sorted({1, *(int(c) for c in args.threads.split(","))})
    report: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "cpus": torch.get_num_threads(),
        "torch": torch.__version__,
        "results": {},
    }
    for condition in args.conditions.split(","):
        busy = None
        if condition == "busy":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for env_id in args.ids.split(","):
                for size in (int(s) for s in args.sizes.split(",")):
                    key = f"{condition} {env_id} x{size}"
                    report["results"][key] = measure(
                        env_id, size, counts, args.rounds, args.seconds
                    )
                    print(key, report["results"][key], file=sys.stderr, flush=True)
        finally:
            if busy is not None:
                busy.kill()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
