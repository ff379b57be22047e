"""The three-body environments' batched core: many gravitational systems stepped in lockstep.

:class:`ThreeBodyVectorEnv` is the native ``gymnasium.vector.VectorEnv`` (torch tensors on
``device``); the single ``gymnasium.Env`` in :mod:`rlsuite.envs.threebody.env` is a batch of
one over it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import fields
from typing import ClassVar, Literal

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.threebody import initial_conditions as ics
from rlsuite.envs.threebody import nbody
from rlsuite.envs.threebody.integrators import NBodyBatch, make_integrator

from rlsuite import keyed_random
from rlsuite.vector import BatchedVectorEnv, Info

RewardName = Literal["paper", "force_evaluations"]
REWARDS = ("paper", "force_evaluations")
#: The paper's action grid for Hermite's η (also the leapfrog's default: see integrators.py).
DEFAULT_ETA_GRID = tuple(np.logspace(-4, -1, 10).tolist())
#: The paper's RL step: 0.1 yr in the N-body units of the built-in sets (mass unit 3 M☉, length
#: unit 1 au), ≈ 1.088 time units; a system of your own needs its own ``interval``.
DEFAULT_INTERVAL = 0.1 * nbody.YEAR
ERROR_FLOOR = 1e-16  # |ΔE/E0| below double precision's resolution counts as this
_STATE_FIELDS = tuple(f.name for f in fields(NBodyBatch))


def paper_reward(
    energy_error: torch.Tensor,
    cost_term: torch.Tensor,
    step: torch.Tensor,
    weights: tuple[float, float],
) -> torch.Tensor:
    """``R_t = −W0 · log10(|ΔE_t| / 1e-10) / (|log10 |ΔE_t||³ · t) + W2 · cost_term``, and 0
    on the first step (``t = 1``). See :class:`ThreeBodyVectorEnv` for the terms."""
    w0, w2 = weights
    log_error = torch.log10(energy_error.clamp(min=ERROR_FLOOR))
    accuracy = -w0 * (log_error + 10.0) / (log_error.abs().clamp(min=1e-2) ** 3 * step)
    return torch.where(step > 1, accuracy + w2 * cost_term, 0.0)


class ThreeBodyVectorEnv(BatchedVectorEnv):
    """Choose the integrator's time-step parameter η for each interval of a chaotic N-body orbit.

    Source: Saz Ulibarrena & Portegies Zwart, "Reinforcement Learning for Adaptive Time-Stepping
    in the Chaotic Gravitational Three-Body Problem", CNSNS 145 (2025).

    **Description.** A gravitational system (three bodies by default; N-body units, G = 1) is
    integrated by a 4th-order Hermite scheme with the adaptive step ``dt = η · t_coll``
    (``integrator="hermite"``), or by a fixed-step leapfrog (``integrator="leapfrog"``), see
    :mod:`rlsuite.envs.threebody.integrators`. Every RL step advances the system by
    ``interval`` N-body time units (default :data:`DEFAULT_INTERVAL` ≈ 1.088 units, which is
    0.1 yr in the units of the built-in sets only: see *Units* below), landing exactly on the
    output time; the agent picks η for that interval. Small η conserves energy and costs many
    force evaluations; large η is cheap and lets the energy error grow. Initial conditions:
    ``initial_conditions="paper" | "figure_eight" | "random_bound"`` (see
    :mod:`~rlsuite.envs.threebody.initial_conditions`; ``masses`` in M☉ for the paper's triple,
    ``perturbation`` for the figure-eight, ``n_bodies`` for random bound systems) or
    ``initial_state=`` one system of your own (below).

    **Units.** N-body units, G = 1: with a mass unit ``M`` and a length unit ``L``, the time
    unit is ``sqrt(L³ / (G·M))`` and the velocity unit ``sqrt(G·M / L)``. The built-in sets use
    ``M`` = the system's total mass (3 M☉ for the paper's triple) and ``L`` = 1 au, so a time
    unit is ≈ 0.0919 yr (``nbody.YEAR`` ≈ 10.88 units make a year) and a velocity unit ≈ 51.6
    km/s; ``figure_eight`` is the classic G = m = 1 orbit (period 6.326 units).

    **Your own system.** ``initial_state={"masses": [m_0, ...], "positions": [[x, y(, z)], ...],
    "velocities": [[vx, vy(, vz)], ...]}``: ``N`` bodies (N ≥ 2; ``N`` replaces ``n_bodies``),
    masses > 0 (not normalised), rows of 2 numbers get z = 0, all in *your* G = 1 units
    (choose ``M`` and ``L``; e.g. masses in M☉ and lengths in au give a time unit of
    ``1/(2π)`` yr and a velocity unit of 2π au/yr ≈ 29.8 km/s). It is validated (finite, no two
    bodies at one point), moved to the centre-of-mass frame and used for every episode (no
    randomness: the seed changes nothing). ``interval`` is in the same time unit, so the default
    means nothing for such a system: set it to the output cadence you want, ``Δt /
    sqrt(L³/(G·M))`` for a physical ``Δt`` (``2π·Δt`` for ``Δt`` in years with M☉ and au), or
    to a fraction of the system's own dynamical time (``period / 100`` for an orbit of known
    period). An episode covers ``max_steps · interval`` time units. η itself is dimensionless
    (a fraction of ``t_coll``), so the same grid works in any units.

    **Action space.** ``Discrete(K)``: action ``k`` plays ``η = eta_grid[k]``; the default grid
    is ``np.logspace(-4, -1, 10)``, the paper's grid for Hermite, i.e. ``η = 10^(−4 + k/3)``
    (action 0: 1e-4, 3: 1e-3, 6: 1e-2, 9: 0.1). The Hermite step is ``dt = η · t_coll``, with
    ``t_coll`` the shortest pairwise crossing or free-fall time
    (:func:`~rlsuite.envs.threebody.nbody.collision_time`); the leapfrog divides each interval
    into equal substeps no longer than that. To play a given η, put it in ``eta_grid`` (any
    numbers in (0, 1)) and step with its index: ``eta_grid=[1e-3, 1e-2]`` makes action 1 play
    η = 0.01, and ``eta_grid=[η]`` a one-action env that always plays η (a fixed-η baseline).
    ``env.unwrapped.core.eta_grid`` (single env) or ``eta_grid`` (vector env) maps actions to
    η; ``info["eta"]`` reports the η played. An action outside the space is a ``ValueError``.

    **Observation space.** ``Box(-inf, inf, (4N + 1,), float32)``, the paper's "cart" state
    (N-body units; positions are divided by ``position_scale`` = 10 to bring them to the
    velocities' order of magnitude):

    | index          | meaning                                                      |
    |----------------|--------------------------------------------------------------|
    | 2i, 2i+1       | x, y of body i ÷ position_scale (i = 0..N−1)                 |
    | 2N+2i, 2N+2i+1 | vx, vy of body i                                             |
    | 4N             | −log10 |ΔE/E0|, the relative energy error so far (0 at reset, as in the paper; errors below 1e-16 count as 1e-16) |

    **Rewards.** ``reward="paper"`` (default), the paper's eq. with ``W0, W2 =
    reward_weights`` (3000, 4):
    ``R_t = −W0 · log10(|ΔE_t|/1e-10) / (|log10 |ΔE_t||³ · t) + W2 / |log10 η_t|``, with
    ``ΔE_t`` the relative energy error after step ``t`` (1-based) and ``R_1 = 0``. The first term
    rewards errors below 1e-10 and punishes larger ones, more strongly early in the episode
    (``1/t``) and enormously as ``|ΔE| → 1`` (``|log10 |ΔE||`` is floored at 0.01 so that R stays
    finite); the second rewards cheap steps (large η). ``reward="force_evaluations"`` replaces
    the cost term by ``W2 / (1 + log10 n_t)``, with ``n_t`` the force evaluations counted in the
    step: the same range (W2 for one evaluation, W2/3 for 100) but measuring the work actually
    done, so it also means the same under both integrators.

    **Starting state.** A system drawn from the environment's (seed, episode) key.
    **Episode end.** Terminated when ``|ΔE/E0| > energy_error_limit`` (0.1), or on a close
    encounter (a substep that would produce a non-finite value, or more than ``max_substeps``
    substeps in one interval: the system is left at its last finite state and
    ``info["encounter"]`` is True). Truncated after ``max_steps`` steps (100 for training, the
    paper evaluates on 300).

    **Info.** ``energy_error`` (|ΔE/E0| after the step), ``eta``, ``force_evaluations`` (in the
    step: one per Hermite or leapfrog substep, the deterministic cost measure),
    ``total_force_evaluations`` (since reset), ``time`` (N-body units), ``encounter``; with
    ``record_wall_time=True`` also ``wall_time`` (seconds for the whole batch's integration;
    off by default, so that steps are deterministic; it is not part of the reward).

    **Arguments** (keyword-only; the vector env also takes ``num_envs`` and ``device``):

    | argument               | default               | meaning                                    |
    |------------------------|-----------------------|--------------------------------------------|
    | ``integrator``         | ``"hermite"``         | ``"hermite"`` (adaptive, ``dt = η·t_coll``) or ``"leapfrog"`` (fixed step) |
    | ``initial_conditions`` | ``"paper"``           | ``"paper"``, ``"figure_eight"`` or ``"random_bound"`` |
    | ``initial_state``      | ``None``              | one system of your own (see *Your own system*) |
    | ``n_bodies``           | 3                     | bodies of ``"random_bound"`` systems       |
    | ``masses``             | (1, 1, 1)             | the paper's triple's masses, M☉            |
    | ``perturbation``       | 1e-3                  | the figure-eight's random perturbation     |
    | ``eta_grid``           | ``logspace(-4, -1, 10)`` | the η of each action, in (0, 1)         |
    | ``interval``           | ≈ 1.088 (0.1 yr)      | N-body time units per step                 |
    | ``max_steps``          | 100                   | steps per episode (truncation)             |
    | ``energy_error_limit`` | 0.1                   | terminate when ``|ΔE/E0|`` exceeds it      |
    | ``reward``             | ``"paper"``           | ``"paper"`` or ``"force_evaluations"``     |
    | ``reward_weights``     | (3000, 4)             | ``(W0, W2)`` of the reward                 |
    | ``position_scale``     | 10                    | positions are divided by it in the observation |
    | ``max_substeps``       | 100,000               | substeps per interval before a close encounter ends the episode |
    | ``record_wall_time``   | ``False``             | add ``info["wall_time"]``                  |
    | ``compile``            | ``False``             | fused ``torch.compile`` kernels            |

    **Vectorized.** ``num_envs`` systems on ``device`` integrated in lockstep, each with its own
    η (:meth:`~rlsuite.envs.threebody.integrators.Integrator.advance`). Next-step autoreset.
    ``compile=True`` fuses 16 substeps per kernel with ``torch.compile`` (about 10× faster for
    small batches on CPU after a one-off compilation of ~1 min per process; agrees with the
    default eager path to rounding, not bit for bit).

    **Version history.** v0: first release.
    """

    episode_metrics: ClassVar[tuple[str, ...]] = ("energy_error", "total_force_evaluations")

    def __init__(
        self,
        num_envs: int = 1,
        *,
        integrator: str = "hermite",
        initial_conditions: str = "paper",
        initial_state: dict[str, Sequence] | None = None,
        n_bodies: int = 3,
        masses: Sequence[float] = (1.0, 1.0, 1.0),
        perturbation: float = 1e-3,
        eta_grid: Sequence[float] = DEFAULT_ETA_GRID,
        interval: float = DEFAULT_INTERVAL,
        max_steps: int = 100,
        energy_error_limit: float = 0.1,
        reward: RewardName = "paper",
        reward_weights: Sequence[float] = (3000.0, 4.0),
        position_scale: float = 10.0,
        max_substeps: int = 100_000,
        record_wall_time: bool = False,
        compile: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(num_envs, device)
        self.integrator = make_integrator(integrator, compile=compile)
        if initial_state is None and initial_conditions not in ics.IC_SETS:
            raise ValueError(
                f"initial_conditions must be one of {', '.join(ics.IC_SETS)}, "
                f"got {initial_conditions!r} (or pass initial_state=...)"
            )
        for name, value in (
            ("n_bodies", n_bodies),
            ("max_steps", max_steps),
            ("max_substeps", max_substeps),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if n_bodies < 2:
            raise ValueError(f"n_bodies must be at least 2, got {n_bodies}")
        if n_bodies != 3 and initial_state is None and initial_conditions != "random_bound":
            raise ValueError(
                f"initial_conditions={initial_conditions!r} has 3 bodies; n_bodies={n_bodies} "
                "needs initial_conditions='random_bound' or an initial_state"
            )
        for name, value in (
            ("interval", interval),
            ("energy_error_limit", energy_error_limit),
            ("position_scale", position_scale),
        ):
            if not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        weights = tuple(float(w) for w in reward_weights)
        if len(weights) != 2:
            raise ValueError(f"reward_weights must be (W0, W2), got {list(reward_weights)}")
        grid = torch.as_tensor(eta_grid, dtype=torch.float64)
        if grid.ndim != 1 or grid.numel() < 1 or not bool(((grid > 0) & (grid < 1)).all()):
            raise ValueError(
                f"eta_grid must be a non-empty list of numbers in (0, 1), got {list(eta_grid)}"
            )
        self.eta_grid = grid.to(self.device)
        self.initial_conditions = "custom" if initial_state is not None else initial_conditions
        self.initial_state = initial_state
        self.masses_msun = tuple(float(m) for m in masses)
        self.perturbation = perturbation
        self.interval = float(interval)
        self.max_steps = max_steps
        self.energy_error_limit = float(energy_error_limit)
        self.reward = reward
        self.reward_weights = weights
        self.position_scale = float(position_scale)
        self.max_substeps = max_substeps
        self.record_wall_time = bool(record_wall_time)
        # Validate the initial-condition options once, on one system (errors name the option).
        self.n_bodies = n_bodies
        self.n_bodies = self._draw(torch.zeros(1, dtype=torch.int64, device=self.device))[0].shape[
            1
        ]

        self.single_observation_space = spaces.Box(
            -np.inf, np.inf, (4 * self.n_bodies + 1,), np.float32
        )
        self.single_action_space = spaces.Discrete(grid.numel())
        self._finish_spaces()

        b, n, dev = num_envs, self.n_bodies, self.device
        vec = torch.zeros(b, n, 3, dtype=torch.float64, device=dev)
        self.state = NBodyBatch(
            vec.clone(), vec.clone(), torch.ones(b, n, dtype=torch.float64, device=dev),
            torch.zeros(b, n, n * (n - 1) // 2, dtype=torch.float64, device=dev),
            vec.clone(), vec.clone(), torch.zeros(b, dtype=torch.float64, device=dev),
        )  # fmt: skip
        self.initial_energy = torch.ones(b, dtype=torch.float64, device=dev)
        self.energy_error = torch.zeros(b, dtype=torch.float64, device=dev)
        self.steps = torch.zeros(b, dtype=torch.int64, device=dev)
        self.total_evaluations = torch.zeros(b, dtype=torch.int64, device=dev)

    # -- the batched core ----------------------------------------------------------------------
    def _draw(self, key: torch.Tensor) -> ics.State:
        if self.initial_state is not None:
            return ics.custom(self.initial_state, key.shape[0], key.device)
        if self.initial_conditions == "paper":
            return ics.paper_triple(key, self.masses_msun)
        if self.initial_conditions == "figure_eight":
            return ics.figure_eight(key, self.perturbation)
        return ics.random_bound(key, self.n_bodies)

    def _reset_envs(self, ids: torch.Tensor) -> None:
        if ids.numel() == 0:
            return
        key = keyed_random.combine(self.env_seeds[ids], self.episode_index[ids])
        x, v, m = self._draw(key)
        self.state.assign(ids, self.integrator.start(x, v, m))
        self.initial_energy[ids] = nbody.energy(x, v, m)
        self.energy_error[ids] = 0.0
        self.steps[ids] = 0
        self.total_evaluations[ids] = 0

    def _observe(self) -> torch.Tensor:
        b = self.num_envs
        positions = self.state.positions[..., :2].reshape(b, -1) / self.position_scale
        velocities = self.state.velocities[..., :2].reshape(b, -1)
        error = torch.where(
            self.steps > 0, -torch.log10(self.energy_error.clamp(min=ERROR_FLOOR)), 0.0
        )
        return torch.cat([positions, velocities, error.unsqueeze(1)], dim=1).to(torch.float32)

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        eta = self.eta_grid[actions]
        start = time.perf_counter()
        result = self.integrator.advance(
            self.state, self.state.time + self.interval, eta, max_substeps=self.max_substeps
        )
        wall = time.perf_counter() - start
        s = self.state
        energy = nbody.energy(s.positions, s.velocities, s.masses)
        self.energy_error = ((energy - self.initial_energy) / self.initial_energy).abs()
        self.steps = self.steps + 1
        evaluations = result.substeps * self.integrator.evaluations_per_step
        self.total_evaluations = self.total_evaluations + evaluations
        if self.reward == "paper":
            cost_term = 1.0 / eta.log10().abs()
        else:
            cost_term = 1.0 / (1.0 + evaluations.clamp(min=1).to(torch.float64).log10())
        reward = paper_reward(self.energy_error, cost_term, self.steps, self.reward_weights)
        terminated = result.failed | (self.energy_error > self.energy_error_limit)
        truncated = ~terminated & (self.steps >= self.max_steps)
        info: Info = {
            "energy_error": self.energy_error,
            "eta": eta,
            "force_evaluations": evaluations,
            "total_force_evaluations": self.total_evaluations,
            "time": s.time,
            "encounter": result.failed,
        }
        if self.record_wall_time:
            info["wall_time"] = torch.full_like(eta, wall)
        return reward, terminated, truncated, info

    # -- checkpoints ---------------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        state = {f"system_{name}": getattr(self.state, name) for name in _STATE_FIELDS}
        return {
            **state,
            "initial_energy": self.initial_energy,
            "energy_error": self.energy_error,
            "steps": self.steps,
            "total_evaluations": self.total_evaluations,
        }

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        for name in _STATE_FIELDS:
            setattr(self.state, name, state[f"system_{name}"].clone())
        self.initial_energy = state["initial_energy"].clone()
        self.energy_error = state["energy_error"].clone()
        self.steps = state["steps"].clone()
        self.total_evaluations = state["total_evaluations"].clone()
