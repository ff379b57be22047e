"""The SOR environments' batched core: a batch of system sequences stepped in lockstep.

This module holds the rules of the SOR environments once. :class:`SORVectorEnv` is the
native ``gymnasium.vector.VectorEnv`` (torch tensors on ``device``); the single
``gymnasium.Env`` classes in :mod:`rlsuite.envs.sor.env` are batches of one over it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from gymnasium import spaces
from rlsuite.envs.sor import solver
from rlsuite.envs.sor.problems import (
    GridBatch,
    Heat2DFamily,
    MatrixSequence,
    ShiftedLaplacianFamily,
    SparseSequenceFamily,
    Variance,
    VectorSequence,
)

from rlsuite import keyed_random
from rlsuite.vector import BatchedVectorEnv, Info

SolverName = Literal["sor", "ssor_cg"]
ActionType = Literal["discrete", "continuous"]
DEFAULT_OMEGA_GRID = tuple(np.linspace(1.0, 1.95, 20).tolist())
OBSERVATION_FEATURES = ("context", "jacobi_bound", "log10_rhs_norm", "log10_initial_residual")


@dataclass(frozen=True)
class SparseBatch:
    """One step's batch of systems from a user sequence (CPU, numpy)."""

    matrix_index: np.ndarray  # (B,) which matrix of the sequence each env solves
    rhs: np.ndarray  # (B, N)
    x0: np.ndarray  # (B, N)
    context: torch.Tensor  # (B,)


_SOR_SECTIONS = """\
**Action space.** ``Discrete(K)``: action ``k`` is ``omega_grid[k]`` (default
``linspace(1, 1.95, 20)``, the paper's grid, so ``K = 20`` and action ``k`` plays
``ω = 1 + 0.05 k``). With ``action_type="continuous"``: ``Box(omega_range[0], omega_range[1],
(1,), float32)``, default ``[1, 1.99]``. An action outside the space is a ``ValueError``
(never clipped).

**Observation space.** ``Box(-inf, inf, (4,), float32)``, describing the system about to be
solved (dimensionless; each family's ranges are in its **Family** section):

| index | name                   | meaning                                                |
|-------|------------------------|--------------------------------------------------------|
| 0     | context                | the family's context: ``c`` (shifted Laplacian), ``κ(t)`` (heat), ``t/T`` (user) |
| 1     | jacobi_bound           | Gershgorin bound on the Jacobi radius, ``max_i Σ_{j≠i} |a_ij| / a_ii`` (≥ 0) |
| 2     | log10_rhs_norm         | ``log10 ‖b‖₂``                                           |
| 3     | log10_initial_residual | ``log10 (‖b − A x0‖/‖b‖)`` (0 when ``x0 = 0``; warm starts make it negative) |

**Rewards.** ``−iterations`` of the solve, an integer in ``[−max_iterations, 0]``
(``−max_iterations`` if it did not converge).

**Starting state.** ``t = 0`` of a new sequence drawn from the environment's (seed,
episode) key.

**Episode end.** Never terminated; truncated after ``sequence_length`` systems (the sequence
could go on: ``T`` is a budget, not a terminal state).

**Info.** ``iterations`` (int), ``residual`` (final relative residual), ``converged``,
``omega`` (the ω used), ``context``; with ``record_wall_time=True`` also ``wall_time``
(seconds for the whole batch's solve; off by default so that steps are deterministic).

**Arguments** (keyword-only, shared by every SOR env; the family's own are above):

| argument           | default                  | meaning                                        |
|--------------------|--------------------------|------------------------------------------------|
| ``sequence_length``| 100 (user sequence: its length) | systems per episode, ``T``: the truncation |
| ``solver``         | ``"sor"``                | ``"sor"`` (lexicographic SOR) or ``"ssor_cg"`` (SSOR-preconditioned CG) |
| ``action_type``    | ``"discrete"``           | ``"discrete"`` (ω from ``omega_grid``) or ``"continuous"`` (ω in ``omega_range``) |
| ``omega_grid``     | ``linspace(1, 1.95, 20)``| the ω of each discrete action, each in (0, 2)  |
| ``omega_range``    | ``(1.0, 1.99)``          | bounds of the continuous ω, ``0 < low < high < 2`` |
| ``rtol``           | ``1e-8``                 | relative residual ``‖b − Ax‖/‖b‖`` at which a solve stops |
| ``max_iterations`` | 10,000                   | iteration cap per solve (the worst reward)     |
| ``record_wall_time``| ``False``               | add ``info["wall_time"]``                      |

The vector env (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``) also
takes ``num_envs`` and ``device`` (``"cpu"``, ``"cuda"``; the user sequence runs on the CPU).

**Vectorized.** ``num_envs`` sequences in lockstep on ``device``; systems of the batch are
solved together with per-system convergence masks. Next-step autoreset.

**Version history.** v0: first release.
"""

_SOURCE = """\
Source: Khodak, Chow, Balcan & Talwalkar, "Learning to Relax: Setting Solver Parameters
Across a Sequence of Linear System Instances", ICLR 2024.
"""


class SORVectorEnv(BatchedVectorEnv):
    __doc__ = f"""Choose the SOR relaxation parameter ω for each linear system of a sequence.

{_SOURCE}
**Description.** Linear systems ``A_t x = b_t`` arrive one at a time from an instance
family (:mod:`rlsuite.envs.sor.problems`). For each, the agent picks ω; the system is solved
by SOR, ``x ← x + (D/ω + L)⁻¹ (b − A x)`` in lexicographic order (or by SSOR-preconditioned
CG with ``solver="ssor_cg"``), to a relative residual ``‖b − Ax‖/‖b‖ ≤ rtol`` (1e-8),
capped at ``max_iterations`` (10,000). The cost is the number of iterations. The families
are :class:`SORShiftedLaplacianVectorEnv`, :class:`SORHeat2DVectorEnv` and
:class:`SORSparseSequenceVectorEnv`; each class documents its family's arguments.

{_SOR_SECTIONS}"""

    family: ShiftedLaplacianFamily | Heat2DFamily | SparseSequenceFamily

    def __init__(
        self,
        num_envs: int = 1,
        *,
        family: ShiftedLaplacianFamily | Heat2DFamily | SparseSequenceFamily,
        sequence_length: int = 100,
        solver: SolverName = "sor",
        action_type: ActionType = "discrete",
        omega_grid: Sequence[float] = DEFAULT_OMEGA_GRID,
        omega_range: tuple[float, float] = (1.0, 1.99),
        rtol: float = 1e-8,
        max_iterations: int = 10_000,
        record_wall_time: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(num_envs, device)
        self.record_wall_time = bool(record_wall_time)
        if (
            not isinstance(sequence_length, int)
            or isinstance(sequence_length, bool)
            or sequence_length < 1
        ):
            raise ValueError(f"sequence_length must be a positive int, got {sequence_length!r}")
        if solver not in ("sor", "ssor_cg"):
            raise ValueError(f"solver must be 'sor' or 'ssor_cg', got {solver!r}")
        if not (isinstance(rtol, float) and 0 < rtol < 1):
            raise ValueError(f"rtol must be a float in (0, 1), got {rtol!r}")
        if (
            not isinstance(max_iterations, int)
            or isinstance(max_iterations, bool)
            or max_iterations < 1
        ):
            raise ValueError(f"max_iterations must be a positive int, got {max_iterations!r}")
        self.family = family
        self.sequence_length = sequence_length
        self.solver = solver
        self.rtol = rtol
        self.max_iterations = max_iterations
        self.action_type = action_type
        grid = np.asarray(omega_grid, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 1 or not np.all((grid > 0) & (grid < 2)):
            raise ValueError(
                f"omega_grid must be a non-empty list of values in (0, 2), got {list(omega_grid)}"
            )
        self.omega_grid = torch.as_tensor(grid, device=self.device)
        low, high = (float(v) for v in omega_range)
        if not 0 < low < high < 2:
            raise ValueError(f"omega_range must satisfy 0 < low < high < 2, got {omega_range!r}")
        self.omega_range = (low, high)
        if action_type == "discrete":
            self.single_action_space = spaces.Discrete(len(grid))
        elif action_type == "continuous":
            self.single_action_space = spaces.Box(low, high, shape=(1,), dtype=np.float32)
        else:
            raise ValueError(f"action_type must be 'discrete' or 'continuous', got {action_type!r}")
        self.single_observation_space = spaces.Box(
            -np.inf, np.inf, shape=(len(OBSERVATION_FEATURES),), dtype=np.float32
        )
        self._finish_spaces()
        self.t = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.state = self._initial_state(self.env_keys())
        self._pending: GridBatch | SparseBatch | None = None

    # -- the sequence ----------------------------------------------------------------------------
    def env_keys(self) -> torch.Tensor:
        """Each environment's key for its current episode (see :mod:`rlsuite.keyed_random`)."""
        return keyed_random.combine(self.env_seeds, self.episode_index)

    def pending(self) -> GridBatch | SparseBatch:
        """The batch of systems the next step solves."""
        if self._pending is None:
            self._pending = self._make_batch()
        return self._pending

    def instance_optimal_omega(self) -> torch.Tensor:
        """The instance-optimal ω of each pending system (see ``baselines``)."""
        from rlsuite.envs.sor.baselines import instance_optimal_omega

        return instance_optimal_omega(self)

    def action_to_omega(self, actions: torch.Tensor) -> torch.Tensor:
        """Map validated actions to ω, shape ``(B,)`` float64."""
        if self.action_type == "discrete":
            return self.omega_grid[actions]
        omega = actions.reshape(self.num_envs).to(torch.float64)
        low, high = self.omega_range
        # the action space's own float32 bounds are allowed too (float32(1.99) > 1.99)
        lowest, highest = min(low, float(np.float32(low))), max(high, float(np.float32(high)))
        bad = ~torch.isfinite(omega) | (omega < lowest) | (omega > highest)
        if bool(bad.any()):
            raise ValueError(
                f"omega actions must lie in [{low}, {high}] "
                f"(the env's omega_range; SOR converges only for 0 < ω < 2), "
                f"got {omega[bad].tolist()} for envs {torch.nonzero(bad).flatten().tolist()}"
            )
        return omega

    def solve(
        self, omega: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Solve the pending systems with the given ω, ``(B,)``; returns the solutions,
        iterations, final relative residuals and converged flags, and does not advance."""
        batch = self.pending()
        solve = solver.sor_solve if self.solver == "sor" else solver.ssor_pcg_solve
        result = solve(
            batch.systems,
            batch.rhs,
            batch.x0,
            omega,
            rtol=self.rtol,
            max_iterations=self.max_iterations,
        )
        return result.x, result.iterations, result.residual, result.converged

    def step_omega(
        self, omega: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """One step with ω given directly (for baselines and oracles); no autoreset."""
        omega = torch.as_tensor(omega, dtype=torch.float64, device=self.device).reshape(
            self.num_envs
        )
        start = time.perf_counter()
        x, iterations, residual, converged = self.solve(omega)
        wall_time = time.perf_counter() - start
        context = self.pending().context
        self.state = self.family_next_state(x)
        self.t = self.t + 1
        self._pending = None
        reward = -iterations.to(torch.float64)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        truncated = self.t >= self.sequence_length
        info = {
            "iterations": iterations,
            "residual": residual,
            "converged": converged,
            "omega": omega,
            "context": context,
        }
        if self.record_wall_time:
            info["wall_time"] = torch.full(
                (self.num_envs,), wall_time, dtype=torch.float64, device=self.device
            )
        return reward, terminated, truncated, info

    # -- BatchedVectorEnv hooks --------------------------------------------------------------------
    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        return self.step_omega(self.action_to_omega(actions))

    def _reset_envs(self, ids: torch.Tensor) -> None:
        self.t[ids] = 0
        self.state[ids] = self._initial_state(self.env_keys()[ids])
        self._pending = None

    def _observe(self) -> torch.Tensor:
        batch = self.pending()
        jacobi_bound, rhs_norm, r0 = self._system_features()
        safe = torch.clamp(rhs_norm, min=1e-300)
        features = torch.stack(
            [
                batch.context,
                jacobi_bound,
                torch.log10(safe),
                torch.log10(torch.clamp(r0 / safe, min=1e-300)),
            ],
            dim=1,
        )
        return features.to(torch.float32)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"t": self.t, "state": self.state}

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        self.t = state["t"]
        self.state = state["state"]
        self._pending = None

    # -- family plumbing -------------------------------------------------------------------------
    def _initial_state(self, keys: torch.Tensor) -> torch.Tensor:
        return self.family.initial_state(keys)

    def family_next_state(self, solution: torch.Tensor) -> torch.Tensor:
        return self.family.next_state(self.state, solution)

    def _make_batch(self) -> GridBatch | SparseBatch:
        return self.family.batch(self.env_keys(), self.t, self.state)

    def _system_features(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Gershgorin Jacobi bound, ‖b‖, ‖b − A x0‖) of the pending grid systems."""
        batch = self.pending()
        s = batch.systems
        r0 = solver.field_norm(batch.rhs - solver.stencil_matvec(s, batch.x0))
        return 4.0 * s.off / s.diag, solver.field_norm(batch.rhs), r0


class SORShiftedLaplacianVectorEnv(SORVectorEnv):
    __doc__ = f"""SOR's ω for a sequence of shifted Laplacians ``(A + cI) x = b``.

Ids ``rlsuite/SOR-ShiftedLaplacian-v0`` and ``rlsuite/SOR-ShiftedLaplacianContinuous-v0``
(``action_type="continuous"``).

{_SOURCE}
**Description.** Linear systems ``A_t x = b_t`` arrive one at a time; for each, the agent picks
ω and the system is solved by SOR, ``x ← x + (D/ω + L)⁻¹ (b − A x)`` in lexicographic order
(or by SSOR-preconditioned CG with ``solver="ssor_cg"``), from ``x0 = 0`` to a relative
residual ``‖b − Ax‖/‖b‖ ≤ rtol``, capped at ``max_iterations``. The cost is the number of
iterations.

**Family** (:class:`~rlsuite.envs.sor.problems.ShiftedLaplacianFamily`, the paper's Section 6).
``A`` is the 5-point Laplacian (stencil ``4, −1``) on an ``n × n`` interior grid, a new shift
``c = −0.15 + 0.6·Beta(α, β)`` and a new ``b`` (a standard Gaussian truncated to
``‖b‖ ≤ rhs_radius``) every step. Observation ranges: ``context = c ∈ [−0.15, 0.45]``;
``jacobi_bound = 4/(4 + c) ∈ [0.90, 1.04]``; ``log10_rhs_norm ≤ log10(rhs_radius)`` (about 1
at ``n = 10``); ``log10_initial_residual = 0`` (``x0 = 0``).

| argument       | default  | meaning                                                           |
|----------------|----------|-------------------------------------------------------------------|
| ``n``          | 10       | interior grid side, ``2 ≤ n ≤ 10`` (``n²`` unknowns; larger ``n`` makes ``A + cI`` indefinite at ``c = −0.15``) |
| ``variance``   | ``"high"`` | ``"high"``: Beta(0.5, 1.5); ``"low"``: Beta(2, 6)              |
| ``rhs_radius`` | ``n + 2``  | truncation radius of ``b``                                      |

{_SOR_SECTIONS}"""

    def __init__(
        self,
        num_envs: int = 1,
        *,
        n: int = 10,
        variance: Variance = "high",
        rhs_radius: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_envs, family=ShiftedLaplacianFamily(n, variance, rhs_radius), **kwargs)


class SORHeat2DVectorEnv(SORVectorEnv):
    __doc__ = f"""SOR's ω for each Crank–Nicolson step of a 2-D heat equation, warm-started.

Id ``rlsuite/SOR-Heat2D-v0``.

{_SOURCE}
**Description.** Each step is one Crank–Nicolson time step of ``u_t = κ(t) Δu + f(x, y, t)``:
the agent picks ω and the step's linear system is solved by SOR (or SSOR-preconditioned CG
with ``solver="ssor_cg"``), warm-started from the previous step's solution, to a relative
residual ``‖b − Ax‖/‖b‖ ≤ rtol``, capped at ``max_iterations``. The cost is the number of
iterations.

**Family** (:class:`~rlsuite.envs.sor.problems.Heat2DFamily`, the paper's Section 6). The
unit square, ``u = 0`` on the boundary, an ``n × n`` interior grid (``h = 1/(n+1)``),
``κ(t) = max(0.1 sin 2πt, −10 sin 2πt)`` and a Gaussian bump ``f`` whose centre circles the
middle of the square. Observation ranges: ``context = κ ∈ [0, 10]``; ``jacobi_bound =
4α/(1 + 4α) ∈ [0, 1)`` with ``α = κ dt / (2h²)``; ``log10_initial_residual ≤ 0`` typically
(warm start).

| argument      | default | meaning                                       |
|---------------|---------|-----------------------------------------------|
| ``n``         | 20      | interior grid side (``n²`` unknowns)          |
| ``dt``        | 0.01    | time step (``t`` advances ``dt`` per env step) |
| ``amplitude`` | 10.0    | height of the forcing bump ``f``              |
| ``width``     | 0.1     | width (standard deviation) of the bump        |

{_SOR_SECTIONS}"""

    def __init__(
        self,
        num_envs: int = 1,
        *,
        n: int = 20,
        dt: float = 0.01,
        amplitude: float = 10.0,
        width: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_envs, family=Heat2DFamily(n, dt, amplitude, width), **kwargs)


class SORSparseSequenceVectorEnv(SORVectorEnv):
    __doc__ = f"""SOR's ω for a sequence of your own sparse SPD systems, solved on the CPU with SciPy.

Id ``rlsuite/SOR-SparseSequence-v0``.

{_SOURCE}
**Description.** The systems ``A_0 … A_(T−1)`` you give arrive in order; for each, the agent
picks ω and the system is solved by SOR (or SSOR-preconditioned CG with
``solver="ssor_cg"``) to a relative residual ``‖b − Ax‖/‖b‖ ≤ rtol``, capped at
``max_iterations``. The cost is the number of iterations.

**Family** (:class:`~rlsuite.envs.sor.problems.SparseSequenceFamily`). Every matrix is checked
to be symmetric positive definite. The sequence repeats if ``sequence_length`` exceeds its
length (default: its length). ``device`` must be CPU. Observation ranges: ``context = t/T ∈
[0, 1)``; ``jacobi_bound ≥ 0`` (the Gershgorin bound of the matrix); ``log10_initial_residual
= 0`` from ``x0 = 0``, negative with ``warm_start``.

| argument       | default   | meaning                                                                |
|----------------|-----------|------------------------------------------------------------------------|
| ``matrices``   | required  | a list of SciPy sparse SPD matrices or Matrix Market ``.mtx`` paths, all ``N × N``, or one matrix or path alone (a sequence of one) |
| ``rhs``        | all ones  | one ``b`` per matrix: a list of length-``N`` arrays or ``.npy`` / ``.mtx`` paths, a ``(T, N)`` array, or one vector with one matrix |
| ``warm_start`` | ``False`` | start each solve from the previous solution (else ``x0 = 0``)           |

{_SOR_SECTIONS}"""

    #: ``rlsuite eval`` reports this beside the results: the seeds vary nothing here.
    evaluation_note = (
        "SOR-SparseSequence replays the same user systems (matrices= and rhs=) for every seed: "
        "held-out seeds do not hold out systems; evaluate on a sequence the agent did not train on "
        "(--env-kwarg matrices=...)"
    )

    family: SparseSequenceFamily

    def __init__(
        self,
        num_envs: int = 1,
        *,
        matrices: MatrixSequence | None = None,
        rhs: VectorSequence | None = None,
        warm_start: bool = False,
        sequence_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        if matrices is None:
            raise ValueError(
                "SOR-SparseSequence needs matrices= (a SciPy sparse SPD matrix or .mtx path, or "
                "a list of them)"
            )
        device = torch.device(kwargs.get("device") or "cpu")
        if device.type != "cpu":
            raise ValueError(
                f"the sparse SOR path runs on the CPU only, got device={str(device)!r}"
            )
        if sequence_length is not None and (
            not isinstance(sequence_length, int)
            or isinstance(sequence_length, bool)
            or sequence_length < 1
        ):  # checked here: `sequence_length or len(family)` below would take 0 as the default
            raise ValueError(f"sequence_length must be a positive int, got {sequence_length!r}")
        family = SparseSequenceFamily(matrices, rhs, warm_start)
        self._gershgorin = np.array([_gershgorin_jacobi_bound(m) for m in family.matrices])
        super().__init__(
            num_envs,
            family=family,
            sequence_length=len(family) if sequence_length is None else sequence_length,
            **kwargs,
        )

    def _initial_state(self, keys: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(keys), self.family.size, dtype=torch.float64)

    def family_next_state(self, solution: torch.Tensor) -> torch.Tensor:
        return solution

    def _make_batch(self) -> SparseBatch:
        index = (self.t % len(self.family)).numpy()
        rhs = (
            np.stack([self.family.rhs[i] for i in index])
            if len(index)
            else np.zeros((0, self.family.size))
        )
        x0 = self.state.numpy() if self.family.warm_start else np.zeros_like(rhs)
        context = self.t.to(torch.float64) / self.sequence_length
        return SparseBatch(index, rhs, x0.copy(), context)

    def solve(
        self, omega: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = self.pending()
        x = np.zeros_like(batch.rhs)
        iterations = np.zeros(self.num_envs, dtype=np.int64)
        residual = np.zeros(self.num_envs)
        converged = np.zeros(self.num_envs, dtype=bool)
        solve = solver.sparse_sor_solve if self.solver == "sor" else solver.sparse_ssor_pcg_solve
        omega_np = omega.cpu().numpy()
        for index in np.unique(batch.matrix_index):  # envs in lockstep share one matrix
            rows = np.flatnonzero(batch.matrix_index == index)
            result = solve(
                self.family.matrices[index],
                batch.rhs[rows],
                batch.x0[rows],
                omega_np[rows],
                rtol=self.rtol,
                max_iterations=self.max_iterations,
            )
            x[rows], iterations[rows] = result.x, result.iterations
            residual[rows], converged[rows] = result.residual, result.converged
        return (
            torch.as_tensor(x),
            torch.as_tensor(iterations),
            torch.as_tensor(residual),
            torch.as_tensor(converged),
        )

    def _system_features(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = self.pending()
        residual = np.empty_like(batch.rhs)
        for i in np.unique(batch.matrix_index):
            rows = np.flatnonzero(batch.matrix_index == i)
            residual[rows] = batch.rhs[rows] - (self.family.matrices[i] @ batch.x0[rows].T).T
        return (
            torch.as_tensor(self._gershgorin[batch.matrix_index]),
            torch.as_tensor(np.linalg.norm(batch.rhs, axis=1)),
            torch.as_tensor(np.linalg.norm(residual, axis=1)),
        )


def _gershgorin_jacobi_bound(matrix: sp.csr_matrix) -> float:
    diag = matrix.diagonal()
    off = np.asarray(abs(matrix).sum(axis=1)).ravel() - np.abs(diag)
    return float(np.max(off / diag))
