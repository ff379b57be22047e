"""The mallocGame baselines: each an agent name for configs and ``rlsuite eval --baseline``.

* ``best-fit`` — the XLA-like heuristic. Buffers arrive in the game's order (memory-boundedness
  for mapping, decreasing size for packing); each goes into the smallest free chunk of the
  address space over its live range where it fits (best fit; ties by lowest offset), among
  the ``max_offsets`` chunks the game offers (the lowest ones; raise ``max_offsets`` to offer
  more). Mapping
  leaves a buffer in slow memory when nothing fits or it would save nothing (zero benefit).
  In the packing game this is size-descending best fit;
* ``first-fit`` — the lowest offset where the buffer fits (mapping: when it saves anything);
* ``random`` — a uniformly random legal action;
* ``slow`` — mapping only: everything stays in slow memory (return 0).

:func:`exhaustive_search` finds the game's optimum on tiny instances (≤ 10 buffers or so) by
enumerating every legal action sequence with the batched transition, pruned by a bound that
never cuts off an optimum: a buffer's saving given other fast buffers is at most its benefit
(mapping), and the peak height never falls (packing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from rlsuite.envs.malloc import game
from rlsuite.envs.malloc.game import Candidates, GameTables
from rlsuite.envs.malloc.vector import MallocVectorEnv

from rlsuite.evaluation import EpisodeResults, run_agent_episodes
from rlsuite.vector import sample_legal

NAMES = ("best-fit", "first-fit", "random", "slow")


def best_fit_actions(tables: GameTables, state: game.GameState, cands: Candidates) -> torch.Tensor:
    """(B,) the best-fit action for every position (see the module docstring)."""
    gap = torch.where(cands.slot_valid, cands.gap, float("inf"))
    best = torch.argmin(gap, dim=1)  # first minimum = lowest offset among ties
    return _place_or_slow(tables, state, cands, best)


def first_fit_actions(tables: GameTables, state: game.GameState, cands: Candidates) -> torch.Tensor:
    """(B,) the lowest-offset legal placement for every position."""
    return _place_or_slow(tables, state, cands, torch.zeros_like(state.step))


def _place_or_slow(
    tables: GameTables, state: game.GameState, cands: Candidates, slot: torch.Tensor
) -> torch.Tensor:
    if tables.mode == "pack":
        return torch.where(cands.done, 0, slot)
    cur = game.current_buffer(tables, state)
    worth = tables.benefit[state.pool, cur] > 0
    fits = cands.slot_valid.gather(1, slot[:, None])[:, 0]
    return torch.where(fits & worth, slot + 1, 0)


class Baseline:
    """A baseline policy as an agent: ``predict`` reads the env's current candidates, so it
    must be called on the env's latest observation (as evaluation does)."""

    def __init__(self, name: str, env: MallocVectorEnv, seed: int = 0) -> None:
        if name not in NAMES:
            raise ValueError(f"unknown mallocGame baseline {name!r}; choose from {NAMES}")
        if name == "slow" and env.mode != "map":
            raise ValueError("the 'slow' baseline exists for the mapping game only")
        self.name, self.env = name, env
        self.rng = np.random.default_rng(seed)

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        env = self.env
        cands = env.candidates()
        if self.name == "best-fit":
            return best_fit_actions(env.tables, env.state, cands)
        if self.name == "first-fit":
            return first_fit_actions(env.tables, env.state, cands)
        if self.name == "slow":
            return torch.zeros(env.num_envs, dtype=torch.int64, device=env.device)
        actions = sample_legal(cands.action_mask.cpu().numpy(), self.rng)
        return torch.as_tensor(actions, device=env.device)


def episode_results(
    name: str, make_env: Callable[[int], MallocVectorEnv], seeds: Sequence[int]
) -> EpisodeResults:
    """Baseline ``name`` on ``seeds``, one episode each, all in one batch."""
    env = make_env(len(seeds))
    return run_agent_episodes(Baseline(name, env, seed=int(seeds[0])), env, seeds)


def episode_returns(
    name: str, make_env: Callable[[int], MallocVectorEnv], seeds: Sequence[int]
) -> np.ndarray:
    return episode_results(name, make_env, seeds).returns


def batched_core(env: Any) -> MallocVectorEnv:
    """The batched mallocGame core behind ``env``: a ``gymnasium.make`` env (wrapped), its
    ``unwrapped`` single env (``.core``), or a batched env from ``gymnasium.make_vec`` or
    :class:`MallocVectorEnv` itself."""
    base = getattr(env, "unwrapped", env)
    base = getattr(base, "core", base)
    if not isinstance(base, MallocVectorEnv):
        raise TypeError(
            "expected a mallocGame env (gymnasium.make or make_vec of rlsuite/MallocGame-v0 or "
            f"rlsuite/MallocPack-v0, or a MallocVectorEnv), got {type(env).__name__}"
        )
    return base


def exhaustive_search(
    env: Any, index: int = 0, *, max_positions: int = 2_000_000
) -> tuple[float, list[int]]:
    """The best return reachable from env ``index``'s current position and an action sequence
    that reaches it. ``env`` is a single env (as ``gymnasium.make`` returns it, or its
    ``unwrapped``; ``index`` 0) or a batched one (:func:`batched_core`); it is not stepped.
    Raises a ``ValueError`` when a level of the search would hold more than ``max_positions``
    positions (the instance is too big to enumerate)."""
    env = batched_core(env)
    tables = env.tables
    start = env.get_state(index).without_observation()
    # a first lower bound: best fit from here
    probe, incumbent = start.clone(), 0.0
    incumbent_actions: list[int] = []
    while True:
        cands = game.candidates(tables, probe, env.max_offsets)
        if bool(cands.done[0]):
            break
        action = best_fit_actions(tables, probe, cands)
        probe, reward, _ = game.transition(tables, probe, action, cands)
        incumbent += float(reward[0])
        incumbent_actions.append(int(action[0]))
    row = int(start.pool[0])
    benefit_left = torch.flip(torch.cumsum(torch.flip(tables.benefit[row], [0]), 0), [0])
    frontier, returns = start, torch.zeros(1, dtype=torch.float64, device=env.device)
    history = torch.zeros(1, 0, dtype=torch.int64, device=env.device)
    best, best_actions = incumbent, incumbent_actions
    while frontier.step.shape[0]:
        cands = game.candidates(tables, frontier, env.max_offsets)
        parent, action = torch.nonzero(cands.action_mask & ~cands.done[:, None], as_tuple=True)
        if parent.shape[0] > max_positions:
            raise ValueError(
                f"exhaustive search needs more than {max_positions} positions at depth "
                f"{history.shape[1]}; use it on tiny instances (about 10 buffers)"
            )
        if parent.shape[0] == 0:
            break
        states = frontier.select(parent)
        nxt, reward, terminated = game.transition(tables, states, action, cands.select(parent))
        ret = returns[parent] + reward
        hist = torch.cat([history[parent], action[:, None]], dim=1)
        if bool(terminated.any()):
            i = int(torch.argmax(torch.where(terminated, ret, -float("inf"))))
            if float(ret[i]) > best + 1e-12:
                best, best_actions = float(ret[i]), hist[i].tolist()
        if tables.mode == "map":
            bound = ret + benefit_left[nxt.step] / tables.slow_time[row]
        else:
            bound = ret  # the height never falls, so the return never rises
        keep = ~terminated & (bound > best + 1e-12)
        frontier, returns, history = nxt.select(keep), ret[keep], hist[keep]
    return best, best_actions
