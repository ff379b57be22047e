"""The coRMAB baselines table: every baseline on every family and size.

Xu, Wilder, Khalil & Tambe, "Reinforcement learning with combinatorial actions for coupled
restless bandits" (ICLR 2025). For each family and size (J arms, budget B: 20/5, 40/10,
100/20) one instance is drawn (``instance_seed`` 0, the paper's setting: a planner plays one
instance) and every baseline plays the same ``--episodes`` episodes (seeds 1000, 1001, …;
horizon H = 20, initial states Bernoulli(0.2), the paper's evaluation). Reported per baseline:
the mean per-step expected reward and its standard error over episodes, and for the greedy
MILP the median seconds per action with each backend (HiGHS, SCIP) and how many solves hit
``--time-limit`` (the best action found is then played).

Prints one JSON document (``--markdown`` adds the table as Markdown on stderr)::

    python benchmarks/rmab.py --jobs 2 --markdown          # the full table
    python benchmarks/rmab.py --sizes 20 --episodes 10     # a quick look
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

import numpy as np
import torch
from rlsuite.envs.rmab.baselines import NAMES, Baseline
from rlsuite.envs.rmab.instances import FAMILIES
from rlsuite.envs.rmab.vector import CoRMABVectorEnv

from rlsuite.evaluation import run_agent_episodes

BUDGETS = {20: 5, 40: 10, 100: 20}
HORIZON = 20


def applies(family: str, name: str) -> bool:
    """Whether baseline ``name`` is defined on ``family``."""
    if name == "whittle":
        return family == "budget"
    return not (name == "do-nothing" and family == "interventions")


def run_task(
    family: str, num_arms: int, name: str, episodes: int, time_limit: float | None
) -> dict[str, Any]:
    """Baseline ``name`` on ``episodes`` episodes of one instance of ``family``."""
    torch.set_num_threads(1)
    env = CoRMABVectorEnv(
        episodes,
        family=family,
        num_arms=num_arms,
        budget=BUDGETS[num_arms],
        horizon=HORIZON,
        initial_state_prob=0.2,
        instance_seed=0,
    )
    policy = Baseline(name, env, seed=0, time_limit=time_limit)
    start = time.perf_counter()
    returns = run_agent_episodes(policy, env, list(range(1000, 1000 + episodes))).returns
    per_step = returns / HORIZON
    row: dict[str, Any] = {
        "family": family,
        "num_arms": num_arms,
        "budget": BUDGETS[num_arms],
        "baseline": name,
        "mean_reward_per_step": float(per_step.mean()),
        "sem": float(per_step.std(ddof=1) / np.sqrt(len(per_step))),
        "seconds": time.perf_counter() - start,
    }
    if policy.solve_times:
        row["median_seconds_per_action"] = float(np.median(policy.solve_times))
        row["actions"] = len(policy.solve_times)
        row["timeouts"] = policy.timeouts
    return row


def _run(task: tuple[Any, ...]) -> dict[str, Any]:
    return run_task(*task)


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One line per family and size; a column per baseline: mean ± SEM (and greedy timings)."""
    names = [n for n in NAMES if any(r["baseline"] == n for r in rows)]
    header = ["family", "J/B", *names, "greedy s/action (HiGHS / SCIP)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for family in FAMILIES:
        for J in BUDGETS:
            cell = {r["baseline"]: r for r in rows if r["family"] == family and r["num_arms"] == J}
            if not cell:
                continue
            values = [
                f"{cell[n]['mean_reward_per_step']:.3f} ± {cell[n]['sem']:.3f}"
                if n in cell
                else "–"
                for n in names
            ]

            def timing(name: str, cell: dict[str, Any] = cell) -> str:
                r = cell.get(name)
                if r is None or "median_seconds_per_action" not in r:
                    return "–"
                late = f" ({r['timeouts']}/{r['actions']} at the limit)" if r["timeouts"] else ""
                return f"{r['median_seconds_per_action']:.3g}{late}"

            lines.append(
                f"| {family} | {J}/{BUDGETS[J]} | "
                + " | ".join(values)
                + f" | {timing('greedy')} / {timing('greedy:scip')} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--sizes", default="20,40,100", help="numbers of arms J (20, 40, 100)")
    parser.add_argument("--baselines", default=",".join(NAMES))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument(
        "--time-limit", type=float, default=60.0, help="seconds per greedy-MILP action"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--markdown", action="store_true", help="also print a Markdown table on stderr"
    )
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    names = [n for n in args.baselines.split(",") if n]
    for what, values, allowed in (
        ("--families", families, FAMILIES),
        ("--sizes", sizes, tuple(BUDGETS)),
        ("--baselines", names, NAMES),
    ):
        unknown = [v for v in values if v not in allowed]
        if unknown:
            parser.error(f"{what}: unknown {unknown}; allowed: {', '.join(map(str, allowed))}")
    if args.episodes < 2:
        parser.error("--episodes must be at least 2 (a standard error needs two)")
    tasks = [
        (family, J, name, args.episodes, args.time_limit)
        for family in families
        for J in sizes
        for name in names
        if applies(family, name)
    ]
    tasks.sort(key=lambda t: (-t[1], t[2] not in ("greedy", "greedy:scip")))  # long ones first
    start = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        for row in pool.map(_run, tasks):
            rows.append(row)
            print(
                f"[{len(rows)}/{len(tasks)}] {row['family']} J={row['num_arms']} {row['baseline']}: {row['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    rows.sort(
        key=lambda r: (FAMILIES.index(r["family"]), r["num_arms"], NAMES.index(r["baseline"]))
    )
    doc = {
        "episodes": args.episodes,
        "horizon": HORIZON,
        "initial_state_prob": 0.2,
        "instance_seed": 0,
        "time_limit": args.time_limit,
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    json.dump(doc, sys.stdout, indent=2)
    print()
    if args.markdown:
        print(markdown(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
