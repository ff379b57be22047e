"""The coRMAB baselines table: every baseline on every family and size.

Xu, Wilder, Khalil & Tambe, "Reinforcement learning with combinatorial actions for coupled
restless bandits" (ICLR 2025). For each family and size (J arms, budget B: 20/5, 40/10,
100/20) one instance is drawn (``instance_seed`` 0, the paper's setting: a planner plays one
instance) and every baseline plays the same ``--episodes`` episodes (seeds 1000, 1001, …;
horizon H = 20, initial states Bernoulli(0.2), the paper's evaluation). Reported per baseline:
the mean per-step expected reward and its standard error over episodes, and for the greedy
MILP the median seconds per action with each backend (HiGHS, SCIP) and how many solves hit
``--time-limit`` (the best action found is then played).

Prints one JSON document (``--markdown`` adds the table as Markdown on stderr), and first, on
stderr, an estimate of the run's duration from per-action times measured on 2 shared CPU cores
(``--estimate`` prints only that)::

    python benchmarks/rmab.py --jobs 2 --markdown          # J = 20, 3 s per MILP: ~3 min
    python benchmarks/rmab.py --full --jobs 2 --markdown   # J = 20, 40, 100: ~1.5 hours
    python benchmarks/rmab.py --sizes 20 --episodes 10     # a quick look (~1 min)

The default is one size (J = 20) and a 3 s limit per greedy-MILP action; ``--full`` adds J = 40
and 100, where the path family's MILP reaches the limit at every action (so the limit sets the
duration: 50 episodes × 20 actions × the limit, per backend).
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
DEFAULT_SIZES = "20"
FULL_SIZES = "20,40,100"

# For the estimate printed before a run: measured on 2 shared CPU cores (torch 2.13 CPU, HiGHS
# 1.16, SCIP via PySCIPOpt 6.3; 2026-12-05). Median seconds per greedy-MILP action with HiGHS
# and SCIP (None: every solve reaches the time limit) ...
GREEDY_SECONDS_PER_ACTION: dict[tuple[str, int], tuple[float | None, float | None]] = {
    ("budget", 20): (0.0009, 0.0055),
    ("interventions", 20): (0.0044, 0.011),
    ("path", 20): (0.043, 0.076),
    ("scheduling", 20): (0.020, 0.026),
    ("capacity", 20): (0.047, 0.020),
    ("budget", 40): (0.0008, 0.0084),
    ("interventions", 40): (0.016, 0.031),
    ("path", 40): (1.06, 1.14),
    ("scheduling", 40): (0.066, 0.116),
    ("capacity", 40): (0.111, 0.130),
    ("budget", 100): (0.0012, 0.0057),
    ("interventions", 100): (0.028, 0.026),
    ("path", 100): (None, None),
    ("scheduling", 100): (0.084, 0.30),
    ("capacity", 100): (0.52, 1.98),
}
# ... seconds per episode of the sampling baseline (best of 100 random feasible actions) ...
SAMPLING_SECONDS_PER_EPISODE: dict[tuple[str, int], float] = {
    ("budget", 20): 0.07,
    ("interventions", 20): 0.06,
    ("path", 20): 0.20,
    ("scheduling", 20): 0.28,
    ("capacity", 20): 0.45,
    ("budget", 40): 0.06,
    ("interventions", 40): 0.11,
    ("path", 40): 0.68,
    ("scheduling", 40): 1.41,
    ("capacity", 40): 1.50,
    ("budget", 100): 0.12,
    ("interventions", 100): 0.07,
    ("path", 100): 0.79,
    ("scheduling", 100): 1.43,
    ("capacity", 100): 1.40,
}
# ... Whittle's index computation per task, and the other baselines per episode (at most).
WHITTLE_SECONDS = {20: 5.0, 40: 13.0, 100: 44.0}
OTHER_SECONDS_PER_EPISODE = {"iterative": 0.25, "random": 0.05, "do-nothing": 0.05, "whittle": 0.05}


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


def estimate_seconds(
    family: str, num_arms: int, name: str, episodes: int, time_limit: float | None
) -> tuple[float, float]:
    """(typical, worst-case) seconds of one task, from the measured tables above; the worst
    case has every greedy-MILP solve reach ``time_limit`` (``inf`` without a limit)."""
    if name in ("greedy", "greedy:scip"):
        per_action = GREEDY_SECONDS_PER_ACTION[(family, num_arms)][name == "greedy:scip"]
        limit = float("inf") if time_limit is None else time_limit
        typical = limit if per_action is None else min(per_action, limit)
        return episodes * HORIZON * typical, episodes * HORIZON * limit
    if name == "sampling":
        seconds = episodes * SAMPLING_SECONDS_PER_EPISODE[(family, num_arms)]
    else:
        seconds = episodes * OTHER_SECONDS_PER_EPISODE[name]
        if name == "whittle":
            seconds += WHITTLE_SECONDS[num_arms]
    return seconds, seconds


def estimate_wall_seconds(tasks: Sequence[tuple[Any, ...]], jobs: int) -> tuple[float, float]:
    """(typical, worst-case) wall-clock seconds of ``tasks`` on ``jobs`` processes: the work
    shared out, but never less than the longest task."""
    typical, worst = zip(*(estimate_seconds(*t) for t in tasks), strict=True)
    jobs = max(1, jobs)
    return max(sum(typical) / jobs, max(typical)), max(sum(worst) / jobs, max(worst))


def duration(seconds: float) -> str:
    """``seconds`` as a rounded human duration: 40 s, 12 min, 3.4 hours."""
    if seconds == float("inf"):
        return "unbounded"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} hours"


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
    parser.add_argument(
        "--sizes",
        help=f"numbers of arms J, of 20, 40, 100 (default {DEFAULT_SIZES}; --full: {FULL_SIZES})",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"every size ({FULL_SIZES}): the full table, about 1.5 hours on 2 jobs",
    )
    parser.add_argument("--baselines", default=",".join(NAMES))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument(
        "--time-limit",
        type=float,
        default=3.0,
        help="seconds per greedy-MILP action (default 3; the best action found is played)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--markdown", action="store_true", help="also print a Markdown table on stderr"
    )
    parser.add_argument(
        "--estimate", action="store_true", help="print the estimated duration and exit"
    )
    args = parser.parse_args(argv)
    if args.full and args.sizes:
        parser.error("--full runs every size; leave out --sizes (or --full)")
    families = [f for f in args.families.split(",") if f]
    sizes_text = FULL_SIZES if args.full else args.sizes or DEFAULT_SIZES
    try:
        sizes = [int(s) for s in sizes_text.split(",") if s]
    except ValueError:
        parser.error(f"--sizes takes comma-separated ints such as 20,40, got {sizes_text!r}")
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
    typical, worst = estimate_wall_seconds(tasks, args.jobs)
    print(
        f"{len(tasks)} tasks on {max(1, args.jobs)} process(es): about {duration(typical)} "
        f"(per-action times measured on 2 shared CPU cores); at most {duration(worst)} if "
        f"every greedy-MILP solve reaches --time-limit {args.time_limit:g} s",
        file=sys.stderr,
        flush=True,
    )
    if args.estimate:
        return 0
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
