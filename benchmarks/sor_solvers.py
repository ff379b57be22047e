"""Throughput of the batched SOR solver of ``rlsuite.envs.sor.solver``; prints one JSON document.

For each grid side ``n`` (10, the paper's size, and 32) it draws 256 shifted-Laplacian systems
``(A + cI) x = b`` (``c = c_low + (0.45 − c_low)·Beta(0.5, 1.5)``; ``c_low = −0.15`` as in
Khodak et al., "Learning to Relax", ICLR 2024, for ``n = 10``, and ``0`` for ``n = 32``, where
shifts below ``−4(1 − cos(π/33)) ≈ −0.018`` make ``A + cI`` indefinite), ``b`` standard
Gaussian, ``x0 = 0``, ``ω = 1.5``, ``rtol = 1e-8``, and measures

* ``batched_vs_sequential``: one ``sor_solve`` of all 256 systems against 256 ``sor_solve``
  calls of one system each (same device), as a speed ratio;
* ``grid_point_updates_per_second``: useful work ``Σ_k iterations_k · n²`` per second of the
  batched solve, and of PyAMG's compiled lexicographic SOR
  (``pyamg.relaxation.relaxation.sor(A, x, b, ω, iterations=iterations_k, sweep="forward")``)
  run one system at a time for the same per-system sweep counts. PyAMG only sweeps; the batched
  solver also computes the residual after every sweep. PyAMG's final iterates are checked
  against the batched solver's (``max_abs_difference``).

Usage: ``python benchmarks/sor_solvers.py [--device cpu|cuda] [--threads N] [--repeats 3]``.
On a shared 2-core machine the timings move by up to 2× between runs (and far more with 2
threads while the cores are busy, see ``rlsuite.envs.sor.solver``): compare runs made together.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyamg
import scipy.sparse as sp
import torch
from pyamg.relaxation.relaxation import sor as pyamg_sor
from rlsuite.envs.sor.solver import StencilSystems, sor_solve

BATCH = 256
OMEGA = 1.5
RTOL = 1e-8
C_HIGH = 0.45
C_LOW = {10: -0.15, 32: 0.0}


def laplacian(n: int, shift: float) -> sp.csr_matrix:
    """``(4 + c)·I − (K ⊗ I + I ⊗ K)``, ``K`` the 1-D path adjacency, row-major unknowns."""
    path = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1])
    eye = sp.identity(n)
    return sp.csr_matrix((4 + shift) * sp.identity(n * n) - sp.kron(path, eye) - sp.kron(eye, path))


def draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = C_LOW[n] + (C_HIGH - C_LOW[n]) * rng.beta(0.5, 1.5, size=BATCH)
    return c, rng.standard_normal((BATCH, n, n))


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` runs (synchronising CUDA) and the last result."""
    best, result = math.inf, None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(n: int, device: torch.device, repeats: int, seed: int) -> dict[str, Any]:
    c, b_np = draw(n, seed)
    shift = torch.as_tensor(c, device=device)
    systems = StencilSystems(4.0 + shift, torch.ones_like(shift), n)
    b = torch.as_tensor(b_np, device=device)
    omega = torch.full((BATCH,), OMEGA, dtype=torch.float64, device=device)

    def batched() -> Any:
        return sor_solve(systems, b, torch.zeros_like(b), omega, rtol=RTOL)

    def sequential() -> list[Any]:
        return [
            sor_solve(
                StencilSystems(systems.diag[k : k + 1], systems.off[k : k + 1], n),
                b[k : k + 1],
                torch.zeros_like(b[k : k + 1]),
                omega[k : k + 1],
                rtol=RTOL,
            )
            for k in range(BATCH)
        ]

    batched()  # warm-up (index caches, allocator)
    batched_s, result = timed(batched, device, repeats)
    sequential_s, singles = timed(sequential, device, 1)
    iterations = result.iterations.cpu().numpy()
    single_iterations = np.array([int(s.iterations.item()) for s in singles])

    matrices = [laplacian(n, float(ck)) for ck in c]
    rhs = b_np.reshape(BATCH, -1)

    def pyamg_run() -> np.ndarray:
        x = np.zeros_like(rhs)
        for k in range(BATCH):
            sweeps = int(iterations[k])
            pyamg_sor(matrices[k], x[k], rhs[k], OMEGA, iterations=sweeps, sweep="forward")
        return x

    pyamg_s, pyamg_x = timed(pyamg_run, torch.device("cpu"), repeats)
    updates = float(iterations.sum()) * n * n
    batched_rate, pyamg_rate = updates / batched_s, updates / pyamg_s
    return {
        "n": n,
        "systems": BATCH,
        "shift_distribution": f"c = {C_LOW[n]} + {C_HIGH - C_LOW[n]:.2f}·Beta(0.5, 1.5)",
        "iterations": {
            "min": int(iterations.min()),
            "median": float(np.median(iterations)),
            "max": int(iterations.max()),
            "sum": int(iterations.sum()),
            "all_converged": bool(result.converged.all()),
            "sequential_counts_equal_batched": bool(np.array_equal(single_iterations, iterations)),
        },
        "batched_vs_sequential": {
            "batched_seconds": round(batched_s, 4),
            "sequential_seconds": round(sequential_s, 4),
            "speedup": round(sequential_s / batched_s, 2),
        },
        "grid_point_updates_per_second": {
            "batched_sor_solve": round(batched_rate),
            "pyamg_sor_one_system_at_a_time": round(pyamg_rate),
            "pyamg_seconds": round(pyamg_s, 4),
            "ratio_batched_over_pyamg": round(batched_rate / pyamg_rate, 2),
            "max_abs_difference_pyamg_vs_batched_x": float(
                np.abs(pyamg_x - result.x.reshape(BATCH, -1).cpu().numpy()).max()
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device for the batched solver")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: torch's own choice; the JSON records the value)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    report = {
        "benchmark": "sor_solvers",
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "omega": OMEGA,
        "rtol": RTOL,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pyamg": pyamg.__version__,
        },
        "results": [measure(n, device, args.repeats, args.seed) for n in (10, 32)],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
