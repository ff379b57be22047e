"""The Learning-to-Relax bandit figure: learners against the best fixed ω and the oracle.

Khodak, Chow, Balcan & Talwalkar, "Learning to Relax", ICLR 2024 (their
``scripts/contextual.m``): a sequence of ``--steps`` shifted-Laplacian systems
``(A + cI) x = b`` (``c = −0.15 + 0.6·Beta``, high variance by default) is solved once by each
learner, which picks ω from the grid ``linspace(1, 1.95, 20)`` before every solve. Every learner
plays the *same* sequence (env seed ``--seed``), and so does a batch of ``K`` envs that runs
every grid ω on every system, which gives the best fixed ω in hindsight; one more env in that
batch plays the instance-optimal ω (Young's ω* from the system's Jacobi radius) when the env
exposes ``instance_optimal_omega()``.

Prints one JSON document::

    python benchmarks/sor_bandits.py --steps 5000 --jobs 2   # the paper's T (≈ 9 min on 2 cores)
    python benchmarks/sor_bandits.py --steps 500 --jobs 2    # a quick look

``learners.<name>.mean_iterations`` is the learner's mean over the whole sequence,
``running_mean`` its mean over the first ``T'`` systems for ``T' = 1000, 2000, …`` and
``ratio_to_best_fixed`` the mean divided by the best fixed ω's mean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlsuite  # noqa: F401  (registers the env ids)
from rlsuite.registry import get_agent_class

ENV_ID = "rlsuite/SOR-ShiftedLaplacian-v0"
LEARNERS = ("tsallis_inf", "tsallis_inf_cb", "chebcb")


def make_env(num_envs: int, steps: int, variance: str, n: int) -> Any:
    return gym.make_vec(
        ENV_ID,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        sequence_length=steps,
        variance=variance,
        n=n,
    )


def learner_costs(name: str, steps: int, variance: str, n: int, seed: int) -> dict[str, Any]:
    """Iterations of every system when learner ``name`` picks ω (one sequence, seed ``seed``)."""
    torch.set_num_threads(1)
    env = make_env(1, steps, variance, n)
    agent = get_agent_class(name)(env, seed=seed)
    costs: list[float] = []

    def record(_: Any, metrics: Any) -> bool:
        costs.append(metrics["iterations"])
        return True

    start = time.perf_counter()
    agent.learn(steps, callback=record)
    return {"costs": costs, "seconds": time.perf_counter() - start}


def hindsight_costs(steps: int, variance: str, n: int, seed: int) -> dict[str, Any]:
    """Iterations of every system for every grid ω (and the instance-optimal ω), ``(T, K[+1])``."""
    torch.set_num_threads(1)
    probe = make_env(1, steps, variance, n)
    grid = probe.omega_grid
    oracle = hasattr(probe, "instance_optimal_omega")
    width = len(grid) + int(oracle)
    env = make_env(width, steps, variance, n)
    env.reset(seed=[seed] * width)
    table = np.zeros((steps, width))
    start = time.perf_counter()
    for t in range(steps):
        omega = grid
        if oracle:
            omega = torch.cat([grid, env.instance_optimal_omega()[-1:]])
        _, _, _, info = env.step_omega(omega)
        table[t] = info["iterations"].cpu().numpy()
    return {
        "table": table.tolist(),
        "grid": grid.tolist(),
        "oracle": oracle,
        "seconds": time.perf_counter() - start,
    }


def _run(task: tuple[str, ...], steps: int, variance: str, n: int, seed: int) -> dict[str, Any]:
    if task[0] == "hindsight":
        return hindsight_costs(steps, variance, n, seed)
    return learner_costs(task[1], steps, variance, n, seed)


def run_benchmark(
    steps: int,
    *,
    variance: str = "high",
    n: int = 10,
    seed: int = 0,
    learners: Sequence[str] = LEARNERS,
    jobs: int = 1,
) -> dict[str, Any]:
    """The benchmark's JSON document as a dict (see the module docstring)."""
    tasks = [("hindsight",)] + [("learner", name) for name in learners]
    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_run, task, steps, variance, n, seed) for task in tasks]
            results = [f.result() for f in futures]
    else:
        results = [_run(task, steps, variance, n, seed) for task in tasks]
    hindsight, *learned = results

    table = np.asarray(hindsight["table"])
    grid = hindsight["grid"]
    per_omega = table[:, : len(grid)].mean(axis=0)
    best = int(np.argmin(per_omega))
    best_mean = float(per_omega[best])
    checkpoints = [t for t in range(1000, steps + 1, 1000)] or [steps]
    doc: dict[str, Any] = {
        "env": ENV_ID,
        "env_kwargs": {"variance": variance, "n": n, "sequence_length": steps},
        "steps": steps,
        "seed": seed,
        "best_fixed": {
            "omega": round(grid[best], 12),
            "index": best,
            "mean_iterations": best_mean,
            "running_mean": {str(t): float(table[:t, best].mean()) for t in checkpoints},
        },
        "fixed_omega_mean_iterations": {
            f"{omega:.4g}": float(m) for omega, m in zip(grid, per_omega, strict=True)
        },
        "learners": {},
        "seconds": {"hindsight": hindsight["seconds"]},
    }
    if hindsight["oracle"]:
        doc["instance_optimal"] = {"mean_iterations": float(table[:, -1].mean())}
    for name, result in zip(learners, learned, strict=True):
        costs = np.asarray(result["costs"])
        doc["learners"][name] = {
            "mean_iterations": float(costs.mean()),
            "ratio_to_best_fixed": float(costs.mean() / best_mean),
            "running_mean": {str(t): float(costs[:t].mean()) for t in checkpoints},
        }
        doc["seconds"][name] = result["seconds"]
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="systems in the sequence (T)")
    parser.add_argument("--variance", choices=["high", "low"], default="high")
    parser.add_argument("--n", type=int, default=10, help="grid side (the paper: 10)")
    parser.add_argument("--seed", type=int, default=0, help="env seed (and each agent's seed)")
    parser.add_argument(
        "--learners", default=",".join(LEARNERS), help="comma-separated agent names"
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes (one per task at most)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be a positive int, got {args.steps}")
    learners = [name for name in args.learners.split(",") if name]
    doc = run_benchmark(
        args.steps,
        variance=args.variance,
        n=args.n,
        seed=args.seed,
        learners=learners,
        jobs=max(1, args.jobs),
    )
    json.dump(doc, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
