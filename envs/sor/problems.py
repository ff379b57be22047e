"""Instance families: the sequences of linear systems the SOR environments serve.

A family turns an environment's key (its seed and episode number) and the position ``t`` in
the sequence into a batch of systems, without a Python loop over the batch. Grid families
produce :class:`~rlsuite.envs.sor.solver.StencilSystems` (constant-coefficient 5-point
stencils on an ``n × n`` interior grid, zero Dirichlet boundary, mesh width ``h = 1/(n+1)``),
solved by the batched torch solvers; the user family holds sparse SciPy matrices, solved on
the CPU. The families follow Khodak et al., "Learning to Relax", ICLR 2024, Section 6:

* :class:`ShiftedLaplacianFamily` — ``A + cI`` with ``A`` the 5-point Laplacian (stencil
  ``4, -1``), ``c = -0.15 + 0.6·Beta(α, β)``, ``b`` a radially truncated standard Gaussian,
  ``x0 = 0``. Context: ``c``.
* :class:`Heat2DFamily` — Crank–Nicolson steps of ``u_t = κ(t) Δu + f(x, y, t)`` on the unit
  square with ``κ(t) = max(0.1 sin 2πt, -10 sin 2πt)`` and a moving Gaussian bump ``f``; each
  solve is warm-started from the previous step's solution. Context: ``κ``.
* :class:`SparseSequenceFamily` — a user list of sparse SPD matrices with right-hand sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io
import scipy.sparse as sp
import scipy.special
import torch
from rlsuite.envs.sor.solver import StencilSystems, stencil_matvec

from rlsuite import keyed_random

Variance = Literal["high", "low"]
BETA_PARAMETERS: dict[str, tuple[float, float]] = {"high": (0.5, 1.5), "low": (2.0, 6.0)}
"""The paper's two distributions of the shift: c = -0.15 + 0.6·Beta(α, β)."""

# Streams of keyed random numbers (one integer per kind of draw, so draws never collide).
_SHIFT, _RHS_DIRECTION, _RHS_RADIUS, _BUMP = 1, 2, 3, 4


@dataclass(frozen=True)
class GridBatch:
    """One step's batch of grid systems: ``A x = b`` with initial guess ``x0``."""

    systems: StencilSystems
    rhs: torch.Tensor  # (B, n, n)
    x0: torch.Tensor  # (B, n, n)
    context: torch.Tensor  # (B,) the scalar the paper's contextual learners see


def step_keys(env_keys: torch.Tensor, t: torch.Tensor, stream: int) -> torch.Tensor:
    """Keys for the draws of step ``t`` of each environment, for one stream."""
    return keyed_random.combine(env_keys, t, stream)


class ShiftedLaplacianFamily:
    """``(A + cI) x = b`` on an ``n × n`` grid, a new ``c`` and ``b`` at every step.

    Arguments:
        n: interior grid side, ``2 ≤ n ≤ 10`` (default 10, so 100 unknowns, ``h = 1/11``): the
            stencil's smallest eigenvalue ``4(1 − cos πh)`` must exceed 0.15 for ``A + cI`` to
            stay positive definite at ``c = −0.15``.
        variance: ``"high"`` draws ``c`` with Beta(0.5, 1.5), ``"low"`` with Beta(2, 6).
        rhs_radius: ``b`` is a standard Gaussian in ``R^{n²}`` conditioned on ``‖b‖ ≤ rhs_radius``
            (default ``sqrt(n²) + 2``, a little above the typical norm ``≈ n``).
    """

    context_name = "c"

    def __init__(self, n: int = 10, variance: Variance = "high", rhs_radius: float | None = None):
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        if variance not in BETA_PARAMETERS:
            raise ValueError(f"variance must be one of {sorted(BETA_PARAMETERS)}, got {variance!r}")
        smallest_eigenvalue = 4.0 * (1.0 - math.cos(math.pi / (n + 1)))  # of the stencil (4, -1)
        if smallest_eigenvalue <= 0.15:
            raise ValueError(
                f"n={n} makes A + cI indefinite for c near -0.15 (its smallest eigenvalue is "
                f"{smallest_eigenvalue:.4f} - 0.15 < 0); the paper's shift range needs n <= 10"
            )
        self.n = n
        self.variance = variance
        self.rhs_radius = float(n + 2 if rhs_radius is None else rhs_radius)
        if not self.rhs_radius > 0:
            raise ValueError(f"rhs_radius must be > 0, got {rhs_radius!r}")
        self.context_range = (-0.15, 0.45)

    def shift(self, env_keys: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The shift ``c`` of step ``t``: ``-0.15 + 0.6·Beta(α, β)`` by inverse-CDF sampling."""
        a, b = BETA_PARAMETERS[self.variance]
        u = keyed_random.uniform(step_keys(env_keys, t, _SHIFT), 1)[..., 0]
        beta = scipy.special.betaincinv(a, b, u.cpu().numpy())
        return torch.as_tensor(-0.15 + 0.6 * beta, dtype=torch.float64, device=env_keys.device)

    def rhs(self, env_keys: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A radially truncated standard Gaussian: uniform direction, radius from the χ law
        with ``n²`` degrees of freedom conditioned on ``≤ rhs_radius`` (inverse CDF)."""
        dim = self.n * self.n
        direction = keyed_random.normal(step_keys(env_keys, t, _RHS_DIRECTION), dim)
        direction = direction / direction.norm(dim=-1, keepdim=True)
        u = keyed_random.uniform(step_keys(env_keys, t, _RHS_RADIUS), 1)[..., 0].cpu().numpy()
        half_dof = dim / 2.0
        cap = scipy.special.gammainc(half_dof, self.rhs_radius**2 / 2.0)
        radius = np.sqrt(2.0 * scipy.special.gammaincinv(half_dof, u * cap))
        radius_t = torch.as_tensor(radius, dtype=torch.float64, device=env_keys.device)
        return (direction * radius_t[:, None]).reshape(-1, self.n, self.n)

    def initial_state(self, env_keys: torch.Tensor) -> torch.Tensor:
        """No state carries over between systems (``x0 = 0``); an empty placeholder."""
        return torch.zeros(len(env_keys), 0, dtype=torch.float64, device=env_keys.device)

    def batch(self, env_keys: torch.Tensor, t: torch.Tensor, state: torch.Tensor) -> GridBatch:
        c = self.shift(env_keys, t)
        systems = StencilSystems(diag=4.0 + c, off=torch.ones_like(c), n=self.n)
        rhs = self.rhs(env_keys, t)
        return GridBatch(systems, rhs, torch.zeros_like(rhs), c)

    def next_state(self, state: torch.Tensor, solution: torch.Tensor) -> torch.Tensor:
        return state


def diffusion_coefficient(t: torch.Tensor) -> torch.Tensor:
    """The paper's time-varying diffusion ``κ(t) = max(0.1 sin 2πt, -10 sin 2πt)``: slow
    diffusion for half a period, fast (up to 10) for the other half."""
    s = torch.sin(2.0 * math.pi * t)
    return torch.maximum(0.1 * s, -10.0 * s)


class Heat2DFamily:
    """Crank–Nicolson for ``u_t = κ(t) Δu + f`` on ``(0, 1)²`` with ``u = 0`` on the boundary.

    With mesh width ``h = 1/(n+1)``, time step ``dt`` and ``α = κ(t_{k+½}) dt / (2h²)``, one step
    solves the stencil system ``(1 + 4α) u_{ij} - α Σ_nb u = (1 - 4α) u^k_{ij} + α Σ_nb u^k +
    dt f(x_i, y_j, t_{k+½})`` for ``u^{k+1}``, warm-started at ``u^k``. The forcing is a Gaussian
    bump of amplitude ``amplitude`` and width ``width`` whose centre circles the middle of the
    square once per unit time, starting at an angle drawn from the environment's seed.
    The episode's initial field is ``u = 0`` at ``t = 0``.
    """

    context_name = "kappa"

    def __init__(
        self, n: int = 20, dt: float = 0.01, amplitude: float = 10.0, width: float = 0.1
    ) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        for name, value in (("dt", dt), ("amplitude", amplitude), ("width", width)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self.n, self.dt, self.amplitude, self.width = n, float(dt), float(amplitude), float(width)
        self.context_range = (0.0, 10.0)

    def initial_state(self, env_keys: torch.Tensor) -> torch.Tensor:
        return torch.zeros(
            len(env_keys), self.n, self.n, dtype=torch.float64, device=env_keys.device
        )

    def forcing(self, env_keys: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        grid = torch.arange(1, self.n + 1, dtype=torch.float64, device=env_keys.device) / (
            self.n + 1
        )
        phase = 2 * math.pi * keyed_random.uniform(keyed_random.combine(env_keys, _BUMP), 1)[..., 0]
        angle = phase + 2 * math.pi * time
        cx = (0.5 + 0.25 * torch.cos(angle))[:, None, None]
        cy = (0.5 + 0.25 * torch.sin(angle))[:, None, None]
        dist2 = (grid[None, :, None] - cx) ** 2 + (grid[None, None, :] - cy) ** 2
        return self.amplitude * torch.exp(-dist2 / (2 * self.width**2))

    def batch(self, env_keys: torch.Tensor, t: torch.Tensor, state: torch.Tensor) -> GridBatch:
        mid_time = (t.to(torch.float64) + 0.5) * self.dt
        kappa = diffusion_coefficient(mid_time)
        h = 1.0 / (self.n + 1)
        alpha = kappa * self.dt / (2 * h * h)
        systems = StencilSystems(diag=1.0 + 4.0 * alpha, off=alpha, n=self.n)
        # The explicit half (1 - 4α) u + α Σ_nb u equals 2u - A u with A the implicit operator.
        explicit = 2.0 * state - stencil_matvec(systems, state)
        rhs = explicit + self.dt * self.forcing(env_keys, mid_time)
        return GridBatch(systems, rhs, state.clone(), kappa)

    def next_state(self, state: torch.Tensor, solution: torch.Tensor) -> torch.Tensor:
        return solution


# -- user sequences of sparse SPD systems -------------------------------------------------------
#: ``matrices=`` of the sparse family: one SciPy sparse matrix or ``.mtx`` path, or a list of them.
MatrixSequence = (
    sp.spmatrix | sp.sparray | str | Path | Sequence[sp.spmatrix | sp.sparray | str | Path]
)
#: ``rhs=``: one vector (array or ``.mtx``/``.npy`` path) or a list of them / a ``(T, N)`` array.
VectorSequence = np.ndarray | str | Path | Sequence[np.ndarray | Sequence[float] | str | Path]


class SparseSequenceFamily:
    """A user-supplied sequence of sparse SPD systems ``A_t x = b_t``, ``t = 0 … T-1``.

    Arguments:
        matrices: the sequence ``A_0 … A_{T−1}``: a list of SciPy sparse matrices or paths to
            Matrix Market (``.mtx``) files, all of the same size ``N``, or one matrix or path
            alone (``T = 1``: the same system every step). Each is checked: square, symmetric, positive
            diagonal, and positive definite (the smallest eigenvalue by Lanczos for large ``N``,
            dense ``eigvalsh`` for ``N ≤ 2000``).
        rhs: the right-hand sides ``b_t``, one per matrix: a list of vectors (arrays of ``N``
            numbers or ``.mtx``/``.npy`` paths), a ``(T, N)`` array, or, with one matrix, one
            vector or path alone; default: all ones.
        warm_start: start each solve from the previous solution (default ``x0 = 0``).
    The sequence repeats if an episode is longer than ``T``. Context: ``t / T``.
    """

    context_name = "t_fraction"

    def __init__(
        self,
        matrices: MatrixSequence,
        rhs: VectorSequence | None = None,
        warm_start: bool = False,
    ) -> None:
        if isinstance(matrices, (str, Path)) or sp.issparse(matrices):
            matrices = [matrices]  # one system: the sequence of length 1
        if not isinstance(matrices, Sequence) or not matrices:
            raise ValueError(
                "matrices must be a SciPy sparse matrix, a .mtx path, or a non-empty list of "
                f"them; got {type(matrices).__name__} {matrices!r}"
            )
        if rhs is not None and _is_one_vector(rhs):
            rhs = [rhs]  # type: ignore[list-item]
        self.matrices = [_as_spd_csr(m, where=f"matrices[{i}]") for i, m in enumerate(matrices)]
        size = self.matrices[0].shape[0]
        for i, m in enumerate(self.matrices):
            if m.shape[0] != size:
                raise ValueError(
                    f"matrices[{i}] is {m.shape[0]}×{m.shape[0]}, matrices[0] is {size}×{size}"
                )
        if rhs is None:
            self.rhs = [np.ones(size) for _ in self.matrices]
        else:
            if len(rhs) != len(self.matrices):
                raise ValueError(f"rhs has {len(rhs)} vectors for {len(self.matrices)} matrices")
            self.rhs = [_as_vector(r, size, where=f"rhs[{i}]") for i, r in enumerate(rhs)]
        self.size = size
        self.warm_start = bool(warm_start)
        self.context_range = (0.0, 1.0)

    def __len__(self) -> int:
        return len(self.matrices)


def read_matrix_market(path: str | Path) -> sp.csr_matrix:
    """Read a Matrix Market file as CSR; a malformed file is a ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Matrix Market file {str(path)!r} does not exist")
    try:
        matrix = scipy.io.mmread(str(path))
    except Exception as err:  # SciPy raises several types for malformed input
        raise ValueError(f"{str(path)!r} is not a valid Matrix Market file: {err}") from err
    if np.iscomplexobj(matrix):
        raise ValueError(
            f"{str(path)!r} holds a complex matrix; SOR here solves real SPD systems, so its "
            "imaginary part would be lost (convert it to a real matrix yourself if that is meant)"
        )
    if isinstance(matrix, np.ndarray):
        matrix = sp.csr_matrix(matrix)
    return sp.csr_matrix(matrix, dtype=np.float64)


def _as_spd_csr(matrix: object, *, where: str) -> sp.csr_matrix:
    if isinstance(matrix, (str, Path)):
        m = read_matrix_market(matrix)
    elif sp.issparse(matrix):
        m = sp.csr_matrix(matrix, dtype=np.float64)
    else:
        raise TypeError(
            f"{where} must be a SciPy sparse matrix or a .mtx path, got {type(matrix).__name__}"
        )
    rows, cols = m.shape
    if rows != cols:
        raise ValueError(
            f"{where} is not square: shape {rows}×{cols}; SOR needs a square SPD matrix"
        )
    if not np.all(np.isfinite(m.data)):
        raise ValueError(f"{where} has non-finite entries")
    scale = max(abs(m).max(), 1e-300)
    if abs(m - m.T).max() > 1e-12 * scale:
        raise ValueError(
            f"{where} is not symmetric (max |A - Aᵀ| = {abs(m - m.T).max():.3g}); SOR needs SPD"
        )
    diag = m.diagonal()
    if np.any(diag <= 0):
        raise ValueError(
            f"{where} has a non-positive diagonal entry at row {int(np.argmin(diag))}; SPD needs a_ii > 0"
        )
    smallest = _smallest_eigenvalue(m)
    if not smallest > 0:
        raise ValueError(f"{where} is not positive definite (smallest eigenvalue {smallest:.3g})")
    return m


def _smallest_eigenvalue(m: sp.csr_matrix) -> float:
    if m.shape[0] <= 2000:
        return float(np.linalg.eigvalsh(m.toarray())[0])
    from scipy.sparse.linalg import eigsh

    return float(eigsh(m, k=1, which="SA", return_eigenvectors=False, tol=1e-8)[0])


def _is_one_vector(value: object) -> bool:
    """A single right-hand side rather than a list of them: a path, a 1-D array, or a list of
    plain numbers."""
    if isinstance(value, (str, Path)):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return (
        isinstance(value, Sequence)
        and len(value) > 0
        and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value)
    )


def _as_vector(value: object, size: int, *, where: str) -> np.ndarray:
    if isinstance(value, (str, Path)):
        path = Path(value)
        vec = np.load(path) if path.suffix == ".npy" else read_matrix_market(path).toarray()
    else:
        vec = np.asarray(value, dtype=np.float64)
    vec = np.asarray(vec, dtype=np.float64).reshape(-1)
    if vec.shape != (size,):
        raise ValueError(f"{where} has {vec.size} entries, the matrices have {size} rows")
    if not np.all(np.isfinite(vec)):
        raise ValueError(f"{where} has non-finite entries")
    return vec
