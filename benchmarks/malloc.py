"""The mallocGame benchmarks: baseline quality on the shipped programs, and env throughput.

Wang et al., "Optimizing Memory Mapping Using Deep Reinforcement Learning" (arXiv 2305.07440).

* ``quality`` — for each shipped training step at fast capacity 25 % of its peak live bytes:
  the fraction of program time saved by best fit (the XLA-like heuristic), first fit and the
  random legal policy (mean ± sd over ``--episodes`` seeds); for the packing game, best fit's
  and random's height / lower bound (peak live bytes); and on synthetic *tight* instances
  (a C × T rectangle cut into buffers, optimum exactly C) size-descending best fit's height / C,
  with the game's exhaustive optimum on the tiny ones.
* ``speed`` — the native batched env against ``gymnasium.vector.SyncVectorEnv`` of the single
  env, same process, same seeds, uniformly random legal actions (:mod:`rlsuite.bench`), at 64
  and 1024 envs, as a ratio of env steps per second.

Prints one JSON document (``--markdown`` adds tables on stderr)::

    python benchmarks/malloc.py --markdown                   # both parts (about 10 min)
    python benchmarks/malloc.py --part speed --sizes 64,1024
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from rlsuite.envs.malloc import baselines
from rlsuite.envs.malloc.generators import tight_instance
from rlsuite.envs.malloc.instances import load_instance, shipped_instances
from rlsuite.envs.malloc.vector import MallocGameVectorEnv, MallocPackVectorEnv

from rlsuite.bench import benchmark_env


def metric(name: str, cls: type, kwargs: dict[str, Any], seeds: Sequence[int]) -> np.ndarray:
    key = "time_saved" if cls is MallocGameVectorEnv else "height_ratio"
    return baselines.episode_results(name, lambda n: cls(n, **kwargs), seeds).metrics[key]


def quality(episodes: int) -> dict[str, Any]:
    seeds = list(range(1000, 1000 + episodes))
    programs = []
    for name in shipped_instances():
        inst = load_instance(name)
        kwargs = {"instance": inst, "capacity_fraction": 0.25}
        row: dict[str, Any] = {
            "instance": name,
            "buffers": inst.num_buffers,
            "ops": inst.num_ops,
            "peak_live_bytes": inst.peak_live_bytes,
        }
        for policy in ("best-fit", "first-fit"):
            row[f"map_{policy}"] = float(metric(policy, MallocGameVectorEnv, kwargs, seeds[:1])[0])
        random = metric("random", MallocGameVectorEnv, kwargs, seeds)
        row["map_random_mean"], row["map_random_sd"] = float(random.mean()), float(random.std())
        row["pack_best-fit"] = float(
            metric("best-fit", MallocPackVectorEnv, {"instance": inst}, seeds[:1])[0]
        )
        random = metric("random", MallocPackVectorEnv, {"instance": inst}, seeds)
        row["pack_random_mean"], row["pack_random_sd"] = float(random.mean()), float(random.std())
        programs.append(row)
    tight = []
    for num_buffers, num_ops in ((9, 6), (32, 24), (128, 64), (512, 128)):
        ratios, optima = [], []
        for seed in range(20):
            inst, _ = tight_instance(num_buffers, num_ops, seed)
            kwargs = {"instance": inst}
            ratios.append(float(metric("best-fit", MallocPackVectorEnv, kwargs, [0])[0]))
            if num_buffers <= 10:
                env = MallocPackVectorEnv(1, **kwargs)
                env.reset(seed=0)
                optima.append(-baselines.exhaustive_search(env)[0])
        entry: dict[str, Any] = {
            "buffers": num_buffers,
            "ops": num_ops,
            "instances": 20,
            "best_fit_height_over_C": _summary(ratios),
            "best_fit_optimal_share": float(np.mean(np.isclose(ratios, 1.0))),
        }
        if optima:
            entry["game_optimum_height_over_C"] = _summary(optima)
        tight.append(entry)
    return {"programs": programs, "tight_packing": tight, "episodes": episodes}


def _summary(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values)
    return {"mean": float(v.mean()), "median": float(np.median(v)), "max": float(v.max())}


def speed(
    sizes: Sequence[int], instances: Sequence[str], min_seconds: float
) -> list[dict[str, Any]]:
    rows = []
    for env_id in ("rlsuite/MallocGame-v0", "rlsuite/MallocPack-v0"):
        for instance in instances:
            kwargs = {} if instance == "synthetic" else {"instance": instance}
            result = benchmark_env(env_id, sizes, min_seconds=min_seconds, env_kwargs=kwargs)
            for r in result["results"]:
                rows.append({"env_id": env_id, "instance": instance, **r})
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = []
    if "quality" in report:
        q = report["quality"]
        lines += [
            "| instance | N | T | map: best fit | first fit | random | pack: best fit | random |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in q["programs"]:
            lines.append(
                f"| {r['instance']} | {r['buffers']} | {r['ops']} | {r['map_best-fit']:.3f} | "
                f"{r['map_first-fit']:.3f} | {r['map_random_mean']:.3f} ± {r['map_random_sd']:.3f} | "
                f"{r['pack_best-fit']:.4f} | {r['pack_random_mean']:.4f} ± {r['pack_random_sd']:.4f} |"
            )
        lines += [
            "",
            "| tight N/T | best fit height/C mean (median, max) | optimal share | game optimum |",
            "|---|---|---:|---|",
        ]
        for r in q["tight_packing"]:
            s = r["best_fit_height_over_C"]
            opt = r.get("game_optimum_height_over_C")
            lines.append(
                f"| {r['buffers']}/{r['ops']} | {s['mean']:.4f} ({s['median']:.4f}, {s['max']:.4f}) | "
                f"{r['best_fit_optimal_share']:.2f} | "
                + (f"{opt['mean']:.4f} ({opt['median']:.4f}, {opt['max']:.4f})" if opt else "–")
                + " |"
            )
    if "speed" in report:
        lines += ["", "| env | instance | envs | native / SyncVectorEnv |", "|---|---|---:|---:|"]
        for r in report["speed"]:
            lines.append(
                f"| {r['env_id']} | {r['instance']} | {r['num_envs']} | {r['speedup']:.1f}× |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("quality", "speed", "both"), default="both")
    parser.add_argument("--episodes", type=int, default=32, help="random-policy episodes")
    parser.add_argument("--sizes", default="64,1024")
    parser.add_argument(
        "--instances",
        default="synthetic,resnet18-train-b8-r224,efficientnet_b0-train-b8-r224",
        help="speed: 'synthetic' (the default 64-buffer instance) and/or shipped names",
    )
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report: dict[str, Any] = {"threads": 1}
    if args.part in ("quality", "both"):
        report["quality"] = quality(args.episodes)
    if args.part in ("speed", "both"):
        sizes = [int(s) for s in args.sizes.split(",")]
        report["speed"] = speed(sizes, args.instances.split(","), args.min_seconds)
        report["speed_baseline"] = "gymnasium.vector.SyncVectorEnv, random legal actions"
    print(json.dumps(report, indent=2))
    if args.markdown:
        print(markdown(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
