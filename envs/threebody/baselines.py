"""Fixed-η policies: the trade-off curve an adaptive time-stepping agent must beat.

The classical way to run an N-body integrator is one time-step parameter for the whole run.
``fixed:<k>`` plays action ``k`` (``η = eta_grid[k]``) at every step; ``fixed:all`` stands for
every action of the grid. Across the grid the fixed policies trace the curve of final energy
error against computing cost (force evaluations); an agent is useful where it lands below and
to the left of that curve (Saz Ulibarrena & Portegies Zwart 2025, Sec. 5).

Every baseline is evaluated on the same seeds as the agent through :func:`episode_results`,
and :func:`plot_evaluation` draws the evaluation as a PNG (``rlsuite eval`` calls it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rlsuite.envs.threebody.vector import DEFAULT_ETA_GRID, ThreeBodyVectorEnv

from rlsuite.evaluation import EpisodeResults, EvalRow, run_agent_episodes


class FixedAction:
    """A policy that plays one action in every environment (the ``predict`` of an agent)."""

    def __init__(self, action: int) -> None:
        self.action = action

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.full((obs.shape[0],), self.action, dtype=torch.int64, device=obs.device)


def expand_baselines(names: Sequence[str], grid_size: int = len(DEFAULT_ETA_GRID)) -> list[str]:
    """``fixed:all`` → ``fixed:0 … fixed:K−1``; other names are kept."""
    out: list[str] = []
    for name in names:
        out.extend([f"fixed:{k}" for k in range(grid_size)] if name == "fixed:all" else [name])
    return out


def describe(name: str, make_env: Callable[[int], ThreeBodyVectorEnv]) -> str:
    """The table's label of baseline ``name``: ``fixed:k`` with its η, e.g. ``fixed:3 (η=0.001)``."""
    env = make_env(1)
    return f"{name} (η={float(env.eta_grid[_action(name, env)]):.3g})"


def _fixed_index(policy: str) -> int:
    """``k`` of a ``fixed:k`` row, labelled or not (``"fixed:3 (η=0.001)"`` → 3)."""
    return int(policy.split()[0].split(":", 1)[1])


def _action(name: str, env: ThreeBodyVectorEnv) -> int:
    size = env.single_action_space.n
    if name.startswith("fixed:"):
        value = name.split(":", 1)[1]
        if value.isdigit() and int(value) < size:
            return int(value)
    raise ValueError(
        f"unknown three-body baseline {name!r}; known: fixed:<action> with action in [0, {size - 1}], fixed:all"
    )


def episode_results(
    name: str, make_env: Callable[[int], ThreeBodyVectorEnv], seeds: Sequence[int]
) -> EpisodeResults:
    """Baseline ``name`` on ``seeds``, one episode each, all in one batch."""
    env = make_env(len(seeds))
    return run_agent_episodes(FixedAction(_action(name, env)), env, seeds)


def episode_returns(
    name: str, make_env: Callable[[int], ThreeBodyVectorEnv], seeds: Sequence[int]
) -> np.ndarray:
    """Episode returns of baseline ``name`` on ``seeds``."""
    return episode_results(name, make_env, seeds).returns


def plot_evaluation(rows: Sequence[EvalRow], path: str | Path) -> None:
    """Final |ΔE/E0| against force evaluations (medians, quartile bars, log–log): the fixed-η
    policies as a curve, every other policy (the agent) as a marker on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def point(row: EvalRow) -> tuple[Any, ...]:
        cost, error = row.metrics["total_force_evaluations"], row.metrics["energy_error"]
        return (
            cost[1],
            error[1],
            [[cost[1] - cost[0]], [cost[2] - cost[1]]],
            [[error[1] - error[0]], [error[2] - error[1]]],
        )

    fixed = sorted(
        (r for r in rows if r.policy.startswith("fixed:")), key=lambda r: _fixed_index(r.policy)
    )
    others = [r for r in rows if not r.policy.startswith("fixed:")]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    if fixed:
        pts = [point(r) for r in fixed]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="0.5", zorder=1)
        for r, (x, y, xerr, yerr) in zip(fixed, pts, strict=True):
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", color="0.3", ms=4, capsize=2)
            ax.annotate(r.policy, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for r, marker in zip(others, "*sD^v", strict=False):
        x, y, xerr, yerr = point(r)
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, ms=11, capsize=3, label=r.policy)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("force evaluations per episode (median, quartile bars)")
    ax.set_ylabel("final |ΔE/E0| (median, quartile bars)")
    episodes = rows[0].episodes if rows else 0
    ax.set_title(f"energy error against cost on {episodes} held-out episodes")
    if others:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
