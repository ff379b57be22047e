"""Step costs of the WeightReduction env (``rlsuite/QCode-WeightReduction-v0``).

Two measurements, one torch thread, in one process:

* the env's ``pipeline`` policy on HGP(Hamming[7,4,3]) (``code="hgp:hamming:3"``, padding
  4000 × 4000 so the 6-layer thickening fits, ``max_steps=300``): the episode's seconds, its
  moves, and the final code's size and :func:`code_key` (the key of the code the implementation
  before the step-cost work reached: ``PIPELINE_KEY``; ``same_final_code`` compares them);
* random legal episodes (stop masked, so each runs to ``max_steps``) at ``--envs`` envs from
  ``hgp:hamming:3`` with the default padding: the median and 90th percentile of the seconds of
  one ``env.step`` (all envs), in milliseconds.

Prints one JSON document::

    OMP_NUM_THREADS=1 python benchmarks/qcode_steps.py
    OMP_NUM_THREADS=1 python benchmarks/qcode_steps.py --skip-pipeline --steps 100
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
from rlsuite.envs.qcode.baselines import Baseline
from rlsuite.envs.qcode.weight_reduction import WeightReductionVectorEnv, code_key

from rlsuite.vector import sample_legal

#: code_key, n, mx, mz of the pipeline's final code before the step-cost work (commit f6c81bb)
PIPELINE_KEY = {"key": 4277876149262076493, "n": 1904, "mx": 740, "mz": 1148}
#: measured before the step-cost work (commit f6c81bb), same commands, on the same shared 2-core
#: machine (load average 3–4)
BEFORE = {
    "pipeline_seconds": 285.1,
    "pipeline_steps": 53,
    "step_ms_median": 1575.9,
    "step_ms_p90": 2196.1,
}


def pipeline_episode() -> dict[str, Any]:
    env = WeightReductionVectorEnv(
        1, code="hgp:hamming:3", max_qubits=4000, max_checks=4000, max_steps=300
    )
    obs, _ = env.reset(seed=0)
    agent = Baseline("pipeline", env)
    start, moves = time.perf_counter(), 0
    while True:
        obs, _, terminated, truncated, _ = env.step(agent.predict(obs))
        moves += 1
        if bool(terminated[0] | truncated[0]):
            break
    seconds = time.perf_counter() - start
    final = env.codes[0]
    found = {"key": code_key(final), "n": final.n, "mx": final.hx.shape[0], "mz": final.hz.shape[0]}
    return {
        "pipeline_seconds": seconds,
        "pipeline_steps": moves,
        "pipeline_final": found,
        "same_final_code": found == PIPELINE_KEY if PIPELINE_KEY["key"] is not None else None,
    }


def random_steps(envs: int, steps: int, seed: int) -> dict[str, Any]:
    env = WeightReductionVectorEnv(envs, code="hgp:hamming:3")
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(steps):
        mask = info["action_mask"].numpy().copy()
        mask[:, -1] = ~mask[:, :-1].any(1)  # stop only where no move is left
        actions = sample_legal(mask, rng)
        start = time.perf_counter()
        _, _, _, _, info = env.step(actions)
        times.append(time.perf_counter() - start)
    ms = 1000 * np.array(times)
    return {
        "envs": envs,
        "steps": steps,
        "step_ms_median": float(np.median(ms)),
        "step_ms_p90": float(np.percentile(ms, 90)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200, help="random steps (all envs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict[str, Any] = {"torch_threads": 1}
    if not args.skip_pipeline:
        result.update(pipeline_episode())
    result.update(random_steps(args.envs, args.steps, args.seed))
    result["before"] = BEFORE
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
