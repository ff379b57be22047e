"""Throughput of the three-body environments and their batched integrators; prints one JSON document.

* ``env_vs_sync``: env steps per second of the native batched ``rlsuite/ThreeBody-v0`` against
  ``gymnasium.vector.SyncVectorEnv`` of the single env, same seeds and actions, at each batch
  size, as a ratio (``rlsuite.bench.benchmark_env``). ``--action 9`` (default: the largest η,
  the cheapest and the one a good agent plays most) or ``--action random``. With random actions
  the lockstep batch waits for its slowest member (the smallest η), which costs it up to the
  ratio between the mean and the maximum substep count.
* ``core_vs_rebound``: system-steps per second of the batched core on ``--systems`` random bound
  triples (``initial_conditions.random_bound``) against REBOUND (a C code) integrating the same
  systems one at a time, in the same process: its ``leapfrog`` with the same fixed step and
  step count as the batched leapfrog, and ``ias15`` (adaptive, 15th order) over the same time.
  The batched Hermite is reported too. Ratios are batched/REBOUND; REBOUND runs a subset of
  the systems (``--rebound-systems``) and its rate is per system-step, so the sizes need not
  match.

Usage: ``python benchmarks/threebody.py [--sizes 1,64,1024,4096] [--action 9|random]
[--systems 4096] [--substeps 200] [--threads 2] [--device cpu] [--compile] [--skip-env]``.
Machines are shared and noisy: compare figures taken in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import torch
from rlsuite.envs.threebody import initial_conditions as ics
from rlsuite.envs.threebody import nbody
from rlsuite.envs.threebody.integrators import make_integrator

import rlsuite  # noqa: F401
from rlsuite.bench import benchmark_env
from rlsuite.keyed_random import combine


def core_vs_rebound(
    systems: int,
    substeps: int,
    rebound_systems: int,
    device: str,
    compile: bool = False,
    repeats: int = 5,
) -> dict[str, Any]:
    """Batched leapfrog/Hermite against REBOUND's leapfrog/IAS15, system-steps per second.

    The four measurements alternate ``repeats`` times and the ratios are taken per round, so a
    load that comes and goes on a shared machine hits both sides of a ratio alike; the report
    gives each round's ratio and their median."""
    import rebound

    x, v, m = ics.random_bound(combine(torch.arange(systems), 0), n_bodies=3)
    x, v, m = x.to(device), v.to(device), m.to(device)
    t_coll = nbody.collision_time(x, v, m)
    duration = 1.0
    # leapfrog: η·t_coll = duration/substeps for every system -> exactly `substeps` fixed steps
    # (the Hermite takes η ten times larger: about as many adaptive steps)
    etas = {"leapfrog": duration / substeps / t_coll, "hermite": 10 * duration / substeps / t_coll}
    end = torch.full((systems,), duration, dtype=torch.float64, device=device)
    schemes = {name: make_integrator(name, compile=compile) for name in etas}
    if compile:  # compile (and warm up) outside the timing, on a short interval
        for name, scheme in schemes.items():
            scheme.advance(scheme.start(x.clone(), v.clone(), m), end * 0.01, etas[name])

    def batched(name: str) -> float:
        scheme = schemes[name]
        state = scheme.start(x.clone(), v.clone(), m)
        start = time.perf_counter()
        result = scheme.advance(state, end, etas[name])
        if device != "cpu":
            torch.cuda.synchronize()
        return int(result.substeps.sum()) / (time.perf_counter() - start)

    xs, vs, ms = x.cpu().numpy(), v.cpu().numpy(), m.cpu().numpy()

    def one_at_a_time(integrator: str) -> float:
        steps, start = 0, time.perf_counter()
        for s in range(rebound_systems):
            sim = rebound.Simulation()
            sim.G = 1.0
            sim.integrator = integrator
            if integrator == "leapfrog":
                sim.dt = duration / substeps
            for i in range(3):
                sim.add(m=float(ms[s, i]), x=float(xs[s, i, 0]), y=float(xs[s, i, 1]),
                        vx=float(vs[s, i, 0]), vy=float(vs[s, i, 1]))  # fmt: skip
            sim.integrate(duration, exact_finish_time=0 if integrator == "leapfrog" else 1)
            steps += sim.steps_done
        return steps / (time.perf_counter() - start)

    rates: dict[str, list[float]] = {
        k: [] for k in ("batched_leapfrog", "rebound_leapfrog", "batched_hermite", "rebound_ias15")
    }
    for _ in range(repeats):
        rates["batched_leapfrog"].append(batched("leapfrog"))
        rates["rebound_leapfrog"].append(one_at_a_time("leapfrog"))
        rates["batched_hermite"].append(batched("hermite"))
        rates["rebound_ias15"].append(one_at_a_time("ias15"))
    leapfrog = [
        a / b for a, b in zip(rates["batched_leapfrog"], rates["rebound_leapfrog"], strict=True)
    ]
    hermite = [a / b for a, b in zip(rates["batched_hermite"], rates["rebound_ias15"], strict=True)]
    return {
        "systems": systems,
        "rebound_systems": rebound_systems,
        "duration": duration,
        "compiled": compile,
        "repeats": repeats,
        "system_steps_per_s_median": {k: statistics.median(r) for k, r in rates.items()},
        "ratio_batched_leapfrog_vs_rebound_leapfrog": statistics.median(leapfrog),
        "ratio_batched_leapfrog_vs_rebound_leapfrog_rounds": leapfrog,
        "ratio_batched_hermite_vs_rebound_ias15": statistics.median(hermite),
        "ratio_batched_hermite_vs_rebound_ias15_rounds": hermite,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,64,1024,4096")
    parser.add_argument("--action", default="9", help="an action index, or 'random'")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="min seconds of SyncVectorEnv per size"
    )
    parser.add_argument("--systems", type=int, default=4096)
    parser.add_argument("--substeps", type=int, default=200)
    parser.add_argument("--rebound-systems", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-env", action="store_true")
    parser.add_argument("--compile", action="store_true", help="the core's torch.compile kernels")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds per ratio")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
    }
    if not args.skip_env:
        report["env_vs_sync"] = benchmark_env(
            "rlsuite/ThreeBody-v0",
            [int(n) for n in args.sizes.split(",")],
            device=args.device,
            min_seconds=args.seconds,
            action=None if args.action == "random" else int(args.action),
        )
    report["core_vs_rebound"] = core_vs_rebound(
        args.systems, args.substeps, args.rebound_systems, args.device, args.compile, args.repeats
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
