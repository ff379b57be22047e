"""Work–precision of the batched Hermite core against REBOUND's IAS15; prints one JSON document
and draws the plot (``--plot``).

The same ``--systems`` random bound triples (``initial_conditions.random_bound``) are integrated
to ``t = --duration`` (N-body units) by

* the batched Hermite (``η`` from ``--etas``), all systems in one batch, and one system at a
  time (a batch of one, the first ``--alone`` systems);
* REBOUND's IAS15 (``epsilon`` from ``--epsilons``), one system at a time.

For each setting: wall time per system and the median final ``|ΔE/E0|`` over the systems. The
report interpolates (log–log, between neighbouring settings) the wall time per system each
method needs to reach a median error of 1e-6, 1e-9 and 1e-12, and the ratios IAS15 / batched
Hermite. All measurements run in one process, alternating, on the same systems.

Usage: ``python benchmarks/threebody_work_precision.py [--systems 64] [--duration 10]
[--plot benchmarks/results/threebody_work_precision.png]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import time
from typing import Any

import numpy as np
import torch
from rlsuite.envs.threebody import initial_conditions as ics
from rlsuite.envs.threebody import nbody
from rlsuite.envs.threebody.integrators import make_integrator

from rlsuite.keyed_random import combine

TARGETS = (1e-6, 1e-9, 1e-12)


def hermite(x: torch.Tensor, v: torch.Tensor, m: torch.Tensor, eta: float, duration: float):
    """(wall seconds, final |ΔE/E0| per system) of one batch."""
    scheme = make_integrator("hermite")
    state = scheme.start(x.clone(), v.clone(), m)
    end = torch.full((x.shape[0],), duration, dtype=torch.float64)
    start = time.perf_counter()
    scheme.advance(state, end, torch.full_like(end, eta))
    seconds = time.perf_counter() - start
    e0 = nbody.energy(x, v, m)
    error = ((nbody.energy(state.positions, state.velocities, m) - e0) / e0).abs()
    return seconds, error.numpy()


def ias15(x: np.ndarray, v: np.ndarray, m: np.ndarray, epsilon: float, duration: float):
    import rebound

    errors, start = [], time.perf_counter()
    for s in range(x.shape[0]):
        sim = rebound.Simulation()
        sim.G = 1.0
        sim.integrator = "ias15"
        sim.integrator.epsilon = epsilon  # REBOUND 5: the integrator's own fields
        for i in range(x.shape[1]):
            sim.add(m=float(m[s, i]), x=float(x[s, i, 0]), y=float(x[s, i, 1]), z=float(x[s, i, 2]),
                    vx=float(v[s, i, 0]), vy=float(v[s, i, 1]), vz=float(v[s, i, 2]))  # fmt: skip
        e0 = sim.energy()
        sim.integrate(duration, exact_finish_time=1)
        errors.append(abs((sim.energy() - e0) / e0))
    return time.perf_counter() - start, np.array(errors)


def time_to_reach(points: list[tuple[float, float]], target: float) -> float | None:
    """Seconds per system to reach ``target`` median error (``points``: (seconds, error) per
    setting): interpolated log–log between the two neighbouring settings; the cheapest time when
    every setting is already below the target (an upper bound); None when none reaches it."""
    positive = [(t, max(e, 1e-300)) for t, e in points]
    if all(e <= target for _, e in positive):
        return min(t for t, _ in positive)
    pts = sorted(positive, key=lambda p: p[1], reverse=True)  # decreasing error
    for (t0, e0), (t1, e1) in itertools.pairwise(pts):
        if e1 <= target <= e0:
            if e0 == e1:
                return min(t0, t1)
            w = (math.log(target) - math.log(e0)) / (math.log(e1) - math.log(e0))
            return math.exp(math.log(t0) + w * (math.log(t1) - math.log(t0)))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", type=int, default=64)
    parser.add_argument("--alone", type=int, default=4, help="systems also run one at a time")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--etas", default="0.1,0.05,0.03,0.02,0.01,0.005,0.003,0.002,0.001")
    parser.add_argument("--epsilons", default="1e-3,1e-4,1e-5,1e-6,1e-7,1e-8,1e-9")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plot", help="write the work-precision plot here (PNG)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, v, m = ics.random_bound(combine(torch.arange(args.systems), 0), n_bodies=3)
    xs, vs, ms = x.numpy(), v.numpy(), m.numpy()
    curves: dict[str, list[dict[str, float]]] = {
        "hermite_batched": [],
        "hermite_alone": [],
        "ias15": [],
    }
    for eta in (float(e) for e in args.etas.split(",")):
        seconds, errors = hermite(x, v, m, eta, args.duration)
        curves["hermite_batched"].append(
            {
                "eta": eta,
                "seconds_per_system": seconds / args.systems,
                "median_error": float(np.median(errors)),
            }
        )
        alone = [
            hermite(x[i : i + 1], v[i : i + 1], m[i : i + 1], eta, args.duration)
            for i in range(args.alone)
        ]
        curves["hermite_alone"].append(
            {
                "eta": eta,
                "seconds_per_system": sum(s for s, _ in alone) / args.alone,
                "median_error": float(np.median(errors[: args.alone])),
            }
        )
    for epsilon in (float(e) for e in args.epsilons.split(",")):
        seconds, errors = ias15(xs, vs, ms, epsilon, args.duration)
        curves["ias15"].append(
            {
                "epsilon": epsilon,
                "seconds_per_system": seconds / args.systems,
                "median_error": float(np.median(errors)),
            }
        )
    reach = {
        name: {
            f"{t:g}": time_to_reach([(p["seconds_per_system"], p["median_error"]) for p in c], t)
            for t in TARGETS
        }
        for name, c in curves.items()
    }
    ratios = {
        f"{t:g}": (
            reach["ias15"][f"{t:g}"] / reach["hermite_batched"][f"{t:g}"]
            if reach["ias15"][f"{t:g}"] and reach["hermite_batched"][f"{t:g}"]
            else None
        )
        for t in TARGETS
    }
    report: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "systems": args.systems,
        "duration": args.duration,
        "curves": curves,
        "seconds_per_system_to_reach": reach,
        "ratio_ias15_over_batched_hermite": ratios,
    }
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.5))
        labels = {"hermite_batched": f"Hermite, batch of {args.systems}",
                  "hermite_alone": "Hermite, one system at a time",
                  "ias15": "REBOUND IAS15, one at a time"}  # fmt: skip
        for name, points in curves.items():
            ax.loglog([p["median_error"] for p in points], [p["seconds_per_system"] for p in points],
                      "o-", label=labels[name])  # fmt: skip
        ax.set_xlabel("median final |ΔE/E0|")
        ax.set_ylabel("wall seconds per system")
        ax.set_title(f"random triples to t = {args.duration:g}, {args.threads} thread(s)")
        ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        report["plot"] = args.plot
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
