"""Classical choices of ω to measure learners against (Khodak et al. 2024, Section 2).

* ``fixed:<ω>`` — the same ω for every system (``fixed:1.0`` is Gauss–Seidel).
* ``best_fixed`` — the best single grid ω *in hindsight*: every ω of the env's grid is run on
  the same sequences and the one with the least total iterations is reported. This is the
  comparator of the paper's regret bounds for non-contextual learners.
* ``instance_optimal`` — a fresh ω for each system: Young's ``ω* = 2/(1 + sqrt(1 − ρ_J²))``
  where the theory applies (consistently ordered matrices: every 5-point grid family, with
  ``ρ_J = 4e cos(πh)/d`` in closed form), and a golden-section search on the iteration count
  otherwise (user matrices). Young's ω* minimises the asymptotic convergence rate, so on short
  solves it is near-optimal, not exactly optimal; it is the paper's contextual comparator.

Every baseline is evaluated through :func:`episode_returns` on the same seeds as the agent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from rlsuite.envs.sor import solver
from rlsuite.envs.sor.problems import GridBatch
from rlsuite.envs.sor.vector import SORVectorEnv

BASELINE_NAMES = ("fixed:<omega>", "best_fixed", "instance_optimal")
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def instance_optimal_omega(env: SORVectorEnv, *, tolerance: float = 1e-3) -> torch.Tensor:
    """The instance-optimal ω of every pending system of ``env``, shape ``(B,)``."""
    batch = env.pending()
    if isinstance(batch, GridBatch):
        return solver.optimal_omega(batch.systems.jacobi_radius())
    return golden_section_omega(env, tolerance=tolerance)


def golden_section_omega(
    env: SORVectorEnv, low: float = 1.0, high: float = 1.99, *, tolerance: float = 1e-3
) -> torch.Tensor:
    """Golden-section search over ``[low, high]`` for the ω with the fewest iterations, run for
    the whole batch at once (two solves per iteration, the env is not advanced). The iteration
    count is piecewise constant in ω and, for SPD systems, unimodal up to plateaus."""
    a = torch.full((env.num_envs,), low, dtype=torch.float64, device=env.device)
    b = torch.full_like(a, high)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = env.solve(c)[1], env.solve(d)[1]
    while float((b - a).max()) > tolerance:
        left = fc <= fd  # the minimum lies in [a, d]
        a, b = torch.where(left, a, c), torch.where(left, d, b)
        new_c, new_d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        probe = torch.where(left, new_c, new_d)
        f_probe = env.solve(probe)[1]
        fc, fd, c, d = (
            torch.where(left, f_probe, fd),
            torch.where(left, fc, f_probe),
            torch.where(left, new_c, d),
            torch.where(left, c, new_d),
        )
    return (a + b) / 2


def _fixed(omega: float) -> Callable[[SORVectorEnv], torch.Tensor]:
    if not 0 < omega < 2:
        raise ValueError(f"fixed:<omega> needs 0 < omega < 2, got {omega}")
    return lambda env: torch.full((env.num_envs,), omega, dtype=torch.float64, device=env.device)


def omega_policy(name: str) -> Callable[[SORVectorEnv], torch.Tensor]:
    """The ω rule a baseline name stands for (``best_fixed`` is not a rule: see below)."""
    if name.startswith("fixed:"):
        try:
            value = float(name.split(":", 1)[1])
        except ValueError:
            raise ValueError(
                f"baseline {name!r}: expected fixed:<omega> with a number, e.g. fixed:1.5"
            ) from None
        return _fixed(value)
    if name == "instance_optimal":
        return instance_optimal_omega
    raise ValueError(f"unknown SOR baseline {name!r}; known: {', '.join(BASELINE_NAMES)}")


def run_omega_rule(
    env: SORVectorEnv, rule: Callable[[SORVectorEnv], torch.Tensor], seeds: Sequence[int]
) -> np.ndarray:
    """One episode per seed with ω chosen by ``rule``; returns the episode returns
    (``−`` total iterations), shape ``(len(seeds),)``. ``env.num_envs`` must equal ``len(seeds)``."""
    env.reset(seed=list(seeds))
    total = torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)
    for _ in range(env.sequence_length):
        reward, _, _, _ = env.step_omega(rule(env))
        total += reward
    return total.cpu().numpy()


def episode_returns(
    name: str, make_env: Callable[[int], SORVectorEnv], seeds: Sequence[int]
) -> np.ndarray:
    """Episode returns of baseline ``name`` on ``seeds``; ``make_env(num_envs)`` builds the env."""
    if name != "best_fixed":
        return run_omega_rule(make_env(len(seeds)), omega_policy(name), seeds)
    # Every grid ω on every seed in one batch: env k·S + s runs seed s with ω_k.
    grid = make_env(1).omega_grid
    env = make_env(len(grid) * len(seeds))
    omega = grid.repeat_interleave(len(seeds))
    per_env = run_omega_rule(env, lambda e: omega.to(e.device), list(seeds) * len(grid))
    per_omega = per_env.reshape(len(grid), len(seeds))
    return per_omega[int(np.argmax(per_omega.sum(axis=1)))]
