"""Distance timings for the quantum-code environments.

For each starting code: the exact distance (qldpc's Brouwer–Zimmermann search, the ``[qcode]``
extra) and the batched random-information-set estimate (:mod:`rlsuite.envs.qcode.distance`),
with their seconds; then the estimate on a batch of 64 codes against 64 sequential calls of one
code each, same trials, as a ratio (same process, one torch thread).

Prints one JSON document (``--markdown`` adds a table on stderr)::

    python benchmarks/qcode.py --markdown
    python benchmarks/qcode.py --codes steane,bb72 --skip-exact gross
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from rlsuite.envs.qcode.codes import NAMED_CODES, named_code
from rlsuite.envs.qcode.distance import estimate_distance, exact_distance


def timed(function: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def distances(names: Sequence[str], trials: int, skip_exact: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    generator = torch.Generator().manual_seed(0)
    for name in names:
        code = named_code(name)
        estimate, estimate_s = timed(
            lambda code=code: float(
                estimate_distance(code.hx, code.hz, trials=trials, generator=generator)[0]
            )
        )
        row: dict[str, Any] = {
            "code": name,
            "n": code.n,
            "k": code.k,
            "max_check_weight": code.max_check_weight,
            "max_qubit_degree": code.max_qubit_degree,
            "estimate": estimate,
            "estimate_seconds": estimate_s,
            "trials": trials,
        }
        if name not in skip_exact:
            row["exact"], row["exact_seconds"] = timed(lambda code=code: exact_distance(code))
        rows.append(row)
    return rows


def batch_ratio(name: str, batch: int, trials: int) -> dict[str, Any]:
    code = named_code(name)
    hx = torch.as_tensor(code.hx, dtype=torch.bool)
    hz = torch.as_tensor(code.hz, dtype=torch.bool)
    g = torch.Generator().manual_seed(1)
    estimate_distance(hx, hz, trials=trials, generator=g)  # warm-up
    _, sequential = timed(
        lambda: [estimate_distance(hx, hz, trials=trials, generator=g) for _ in range(batch)]
    )
    stacked_x, stacked_z = hx.expand(batch, *hx.shape), hz.expand(batch, *hz.shape)
    _, batched = timed(lambda: estimate_distance(stacked_x, stacked_z, trials=trials, generator=g))
    return {
        "code": name,
        "batch": batch,
        "trials": trials,
        "sequential_seconds": sequential,
        "batched_seconds": batched,
        "speedup": sequential / batched,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", default=",".join(NAMED_CODES))
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--skip-exact", default="", help="codes whose exact distance is skipped")
    parser.add_argument("--batch-codes", default="steane,hgp:hamming:3,bb72")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    skip = [c for c in args.skip_exact.split(",") if c]
    report = {
        "threads": 1,
        "distances": distances(args.codes.split(","), args.trials, skip),
        "batch_vs_sequential": [
            batch_ratio(c, 64, args.trials) for c in args.batch_codes.split(",")
        ],
    }
    print(json.dumps(report, indent=2))
    if args.markdown:
        lines = [
            "| code | n | k | w | q | exact d (s) | estimate (s) |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for r in report["distances"]:
            exact = f"{r['exact']} ({r['exact_seconds']:.3g})" if "exact" in r else "–"
            lines.append(
                f"| {r['code']} | {r['n']} | {r['k']} | {r['max_check_weight']} | "
                f"{r['max_qubit_degree']} | {exact} | {r['estimate']:g} ({r['estimate_seconds']:.3g}) |"
            )
        lines += ["", "| code | batch 64 vs 64 calls |", "|---|---:|"]
        lines += [f"| {r['code']} | {r['speedup']:.1f}× |" for r in report["batch_vs_sequential"]]
        print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
