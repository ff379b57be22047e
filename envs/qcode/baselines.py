"""Baselines for the quantum-code environments.

WeightReduction (:class:`~rlsuite.envs.qcode.weight_reduction.WeightReductionVectorEnv`):

* ``pipeline`` — the fixed Sabo et al. order (PRX Quantum 5, 040302, 2024): copy every qubit
  of X-degree > 3, gauge every X check of weight > 3, thicken once (side Z, "cone" heights, the
  fewest layers in {2, …, 6} whose coned X weights and Z degrees meet the targets), cone every
  Z check above the target weight, then stop;
* ``greedy`` — the legal move with the largest immediate excess-weight reduction per added
  qubit (stop when no move reduces it);
* ``random`` and ``stop`` as below.

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
from rlsuite.envs.qcode import moves
from rlsuite.envs.qcode.css import CSSCode
from rlsuite.envs.qcode.product import hgp_parameters
from rlsuite.envs.qcode.tanner_edit import (
    TannerEditVectorEnv,
    objective_value,
    random_tanner_graphs,
)
from rlsuite.envs.qcode.weight_reduction import LAYERS, WeightReductionVectorEnv, excess

from rlsuite import keyed_random
from rlsuite.evaluation import EpisodeResults, run_agent_episodes
from rlsuite.vector import sample_legal

NAMES = ("random", "stop")
WEIGHT_REDUCTION_NAMES = ("pipeline", "greedy", "random", "stop")


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


def pipeline_move(env: WeightReductionVectorEnv, code: CSSCode) -> moves.Move | None:
    """The next move of the fixed Sabo et al. pipeline on ``code`` (``None``: stop).

    The phases run in order and never return: before the thickening, copy (the qubit of largest
    X-degree while it is > 3) and gauge (the heaviest X check while it is > 3); then thicken
    once if a Z check is heavier than ``w_target`` or a qubit's Z-degree exceeds ``q_target``
    (coning after thickening needs the layers to spread its load); after it, cone the heavy Z
    checks. Coning adds edge qubits of X-degree up to 5, which the copying phase, being over,
    does not touch again (``moves.reduce_weights`` makes the same moves without the env)."""
    thickened = any(m.startswith("thicken") for m in code.info.get("moves", []))
    weight_z = code.check_weights("z")
    if not thickened:
        degree_x = code.qubit_degrees("x")
        if degree_x.max() > moves.COPY_DEGREE:
            return moves.Move.copy(int(np.argmax(degree_x)), "x")
        weight_x = code.check_weights("x")
        if weight_x.max() > moves.GAUGE_WEIGHT:
            return moves.Move.gauge(int(np.argmax(weight_x)), "x")
        heavy = weight_z.max(initial=0) > env.w_target
        if heavy or code.qubit_degrees("z").max(initial=0) > env.q_target:
            return _pipeline_thickening(env, code)
    for c in np.argsort(-weight_z, kind="stable"):
        if weight_z[c] <= env.w_target:
            break
        move = moves.Move.cone(int(c), "z")
        if moves.is_legal(code, move) and env.fits(code, move):
            return move
    return None


def _pipeline_thickening(env: WeightReductionVectorEnv, code: CSSCode) -> moves.Move | None:
    """The fewest layers whose coned X weights and Z degrees reach the targets ("cone" heights
    balance exactly these), else the most that fit the padding (``None``: none fits)."""
    fitting = [
        moves.Move.thicken(layers, heights="cone", side="z")
        for layers in LAYERS
        if env.fits(code, moves.Move.thicken(layers, heights="cone", side="z"))
    ]
    for move in fitting:
        x_ok = moves.coned_loads(code, move.layers, "cone").max(initial=0) <= env.w_target
        z_ok = moves.thickened_degrees(code, move.layers, "cone").max(initial=0) <= env.q_target
        if x_ok and z_ok:
            return move
    return fitting[-1] if fitting else None


def greedy_move(
    env: WeightReductionVectorEnv, code: CSSCode, mask: np.ndarray
) -> moves.Move | None:
    """The legal move with the largest excess reduction per added qubit (``None``: stop)."""
    before = excess(code, env.w_target, env.q_target)
    best, best_score = None, 0.0
    for action in np.flatnonzero(mask[:-1]):
        move = env.action_to_move(int(action))
        if move is None:
            continue
        after = moves.apply_move(code, move)
        gain = before - excess(after, env.w_target, env.q_target)
        score = gain / max(after.n - code.n, 1)
        if gain > 0 and score > best_score:
            best, best_score = move, score
    return best


class Baseline:
    """A baseline policy of either qcode env as an agent (``predict`` reads the env's state)."""

    def __init__(
        self, name: str, env: TannerEditVectorEnv | WeightReductionVectorEnv, seed: int = 0
    ) -> None:
        names = WEIGHT_REDUCTION_NAMES if isinstance(env, WeightReductionVectorEnv) else NAMES
        if name not in names:
            raise ValueError(f"unknown {type(env).__name__} baseline {name!r}; choose from {names}")
        self.name, self.env = name, env
        self.rng = np.random.default_rng(seed)

    def predict(self, obs: Any, deterministic: bool = True) -> torch.Tensor:
        env = self.env
        mask = env.action_masks()
        stop = mask.shape[1] - 1
        if self.name == "stop":
            return torch.full((env.num_envs,), stop, device=env.device)
        if self.name in ("pipeline", "greedy"):
            masks = mask.cpu().numpy()
            chosen = []
            for i, code in enumerate(env.codes):  # type: ignore[union-attr]
                move = (
                    pipeline_move(env, code)
                    if self.name == "pipeline"
                    else greedy_move(env, code, masks[i])
                )
                action = env.move_to_action(move)  # type: ignore[union-attr]
                chosen.append(action if masks[i, action] else stop)
            return torch.as_tensor(chosen, device=env.device)
        mask[:, -1] = False  # random moves; the episode ends at the step cap
        return torch.as_tensor(sample_legal(mask.cpu().numpy(), self.rng), device=env.device)


def episode_results(
    name: str, make_env: Callable[[int], Any], seeds: Sequence[int]
) -> EpisodeResults:
    env = make_env(len(seeds))
    return run_agent_episodes(Baseline(name, env, seed=int(seeds[0])), env, seeds)


def episode_returns(name: str, make_env: Callable[[int], Any], seeds: Sequence[int]) -> np.ndarray:
    return episode_results(name, make_env, seeds).returns
