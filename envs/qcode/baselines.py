"""Baselines for the quantum-code environments.

TannerEdit (:class:`~rlsuite.envs.qcode.tanner_edit.TannerEditVectorEnv`), under the same
degree caps as the agent:

* :func:`progressive_edge_growth` — Hu, Eleftheriou & Arnold's PEG construction (IEEE Trans.
  Inf. Theory 51, 2005): bits are connected one edge at a time, each new edge going to a check
  as far as possible from the bit in the graph built so far (one it cannot reach, if any), the
  least-connected such check first, which makes short cycles rare;
* :func:`random_search` — the best of many random degree-constrained graphs (the env's own
  starting distribution);
* policies ``random`` (a random legal toggle, never stopping) and ``stop`` (keep the start).

Each reports the best ``[[n, k, d]]`` of ``HGP(H, H)`` it reaches with ``k d² / n``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from rlsuite.envs.qcode.product import hgp_parameters
from rlsuite.envs.qcode.tanner_edit import (
    TannerEditVectorEnv,
    objective_value,
    random_tanner_graphs,
)

from rlsuite import keyed_random
from rlsuite.evaluation import EpisodeResults, run_agent_episodes
from rlsuite.vector import sample_legal

NAMES = ("random", "stop")


def progressive_edge_growth(
    num_checks: int, num_bits: int, bit_degree: int = 3, row_cap: int = 3
) -> np.ndarray:
    """A PEG parity-check matrix (``num_checks × num_bits``, uint8) with every column weight
    ``bit_degree`` and every row weight at most ``row_cap`` (a column gets fewer edges when no
    check has room). Ties go to the lowest check index, so the result is deterministic."""
    if num_bits * bit_degree > num_checks * row_cap:
        raise ValueError(
            f"{num_bits} bits of degree {bit_degree} need {num_bits * bit_degree} edges, more "
            f"than {num_checks} checks of weight ≤ {row_cap} hold"
        )
    H = np.zeros((num_checks, num_bits), dtype=np.uint8)
    for bit in range(num_bits):
        for _ in range(bit_degree):
            room = (H.sum(1) < row_cap) & (H[:, bit] == 0)
            if not room.any():
                break
            candidates = _farthest_checks(H, bit) & room
            if not candidates.any():
                candidates = room
            degrees = np.where(candidates, H.sum(1), np.iinfo(np.int64).max)
            H[int(np.argmin(degrees)), bit] = 1
    return H


def _farthest_checks(H: np.ndarray, bit: int) -> np.ndarray:
    """The checks at the greatest distance from ``bit`` in the Tanner graph (unreachable ones
    if there are any), by breadth-first search."""
    reached_checks = H[:, bit].astype(bool)
    if not reached_checks.any():
        return np.ones(H.shape[0], dtype=bool)
    frontier = reached_checks.copy()
    last = reached_checks.copy()
    while True:
        bits = H[frontier].sum(0) > 0
        new = (H[:, bits].sum(1) > 0) & ~reached_checks
        if not new.any():
            break
        last = new
        reached_checks |= new
        frontier = new
    unreached = ~reached_checks
    return unreached if unreached.any() else last


def code_parameters(H: np.ndarray | torch.Tensor, objective: str = "kd2/n") -> dict[str, float]:
    """[[n, k, d]], weights and the objective of ``HGP(H, H)``."""
    t = torch.as_tensor(np.asarray(H), dtype=torch.bool)[None]
    p = hgp_parameters(t, t)
    return {
        "n": int(p.num_qubits[0]),
        "k": int(p.dimension[0]),
        "d": float(p.distance[0]) if int(p.dimension[0]) else 0.0,
        "objective": float(objective_value(p, objective)[0]),
        "max_check_weight": int(p.max_check_weight[0]),
        "max_qubit_degree": int(p.max_qubit_degree[0]),
    }


def random_search(
    samples: int,
    num_checks: int = 9,
    num_bits: int = 12,
    row_cap: int = 3,
    col_cap: int = 3,
    bit_degree: int = 2,
    seed: int = 0,
    objective: str = "kd2/n",
) -> tuple[np.ndarray, dict[str, float]]:
    """The best of ``samples`` random degree-constrained matrices (batched) and its parameters."""
    keys = keyed_random.combine(torch.arange(samples), seed)
    H = random_tanner_graphs(keys, num_checks, num_bits, row_cap, col_cap, bit_degree)
    values = objective_value(hgp_parameters(H, H), objective)
    best = int(torch.argmax(values))
    return H[best].numpy().astype(np.uint8), code_parameters(H[best], objective)


class Baseline:
    """A TannerEdit policy as an agent (``predict`` reads the env's current mask)."""

    def __init__(self, name: str, env: TannerEditVectorEnv, seed: int = 0) -> None:
        if name not in NAMES:
            raise ValueError(f"unknown TannerEdit baseline {name!r}; choose from {NAMES}")
        self.name, self.env = name, env
        self.rng = np.random.default_rng(seed)

    def predict(self, obs: Any, deterministic: bool = True) -> torch.Tensor:
        mask = self.env.action_masks()
        if self.name == "stop":
            return torch.full((self.env.num_envs,), self.env.edges, device=self.env.device)
        mask[:, -1] = False  # random toggles; the episode ends at the step cap
        return torch.as_tensor(sample_legal(mask.cpu().numpy(), self.rng), device=self.env.device)


def episode_results(
    name: str, make_env: Callable[[int], TannerEditVectorEnv], seeds: Sequence[int]
) -> EpisodeResults:
    env = make_env(len(seeds))
    return run_agent_episodes(Baseline(name, env, seed=int(seeds[0])), env, seeds)


def episode_returns(
    name: str, make_env: Callable[[int], TannerEditVectorEnv], seeds: Sequence[int]
) -> np.ndarray:
    return episode_results(name, make_env, seeds).returns
