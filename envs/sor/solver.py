"""Batched SOR and SSOR-preconditioned CG for the systems of the SOR environments.

Khodak, Chow, Balcan & Talwalkar, "Learning to Relax: Setting Solver Parameters Across a
Sequence of Linear System Instances", ICLR 2024: the environments charge a learner the number of
iterations an SOR (or SSOR-PCG) solve needs at its chosen relaxation parameter ``ω``.

**Grid systems.** A batch of ``B`` independent systems ``A x = b``, each a constant-coefficient
5-point stencil on an ``n × n`` interior grid with zero Dirichlet boundary, unknowns in
row-major (lexicographic) order::

    (A x)[i, j] = d·x[i, j] − e·(x[i−1, j] + x[i+1, j] + x[i, j−1] + x[i, j+1])

with per-system scalars ``d > 0``, ``e ≥ 0``. Its Jacobi matrix ``I − D⁻¹A`` has spectral radius
``ρ_J = 4e·cos(πh)/d``, ``h = 1/(n+1)``, so ``A`` is SPD iff ``ρ_J < 1``. Examples: the shifted
Laplacian ``A + cI`` (``d = 4 + c``, ``e = 1``) and a Crank–Nicolson heat step (``d = 1 + 4α``,
``e = α``).

**SOR** (the paper's Section 2). Split ``A = D + L + U`` (diagonal, strictly lower, strictly
upper in lexicographic order); one sweep with ``ω ∈ (0, 2)`` is ::

    x ← x + (D/ω + L)⁻¹ (b − A x)

which for SPD ``A`` converges for every ``ω ∈ (0, 2)``. The 5-point matrix is consistently
ordered, so Young's theory gives the asymptotic rate: with ``μ = ρ_J`` ::

    ρ_SOR(ω) = [ωμ/2 + sqrt(ω²μ²/4 − (ω − 1))]²    for ω ≤ ω*,
    ρ_SOR(ω) = ω − 1                                  for ω ≥ ω*,   ω* = 2 / (1 + sqrt(1 − μ²)).

**SSOR-PCG.** Conjugate gradients preconditioned by the symmetric SOR matrix
``M = ω/(2−ω) · (D/ω + L) D⁻¹ (D/ω + U)``, so ``M⁻¹ r = (2−ω)/ω · (D/ω + U)⁻¹ D (D/ω + L)⁻¹ r``.

**Wavefront layout.** With ``D = dI`` and ``L = −e·Lₛ`` (``Lₛ`` sums the up and left neighbours),
``(D/ω + L)⁻¹ = (ω/d)(I − γLₛ)⁻¹`` with ``γ = ωe/d``: the forward substitution is
``y[i, j] = s[i, j] + γ·(y[i−1, j] + y[i, j−1])``. Points on the anti-diagonal ``i + j = k``
depend only on diagonal ``k − 1``, so the exact lexicographic sweep is ``2n − 1`` vectorised
updates. The solvers store every field as a ``(2n+1, n+2, B)`` tensor: slot ``(q, r)`` holds grid
point ``(i, j) = (r − 1, q − r)`` (``q = i + j + 1``), the batch is the last, contiguous axis, and
all slots that are not grid points stay exactly zero. Then the up/left neighbours of slot
``(q, r)`` are slots ``(q−1, r−1)``, ``(q−1, r)`` and the down/right ones ``(q+1, r+1)``,
``(q+1, r)``: a diagonal update works on contiguous slices, with no gather or scatter, in one or
two tensor operations (see :class:`_WaveOps`). An SOR sweep is then one stencil residual
(which the convergence test needs anyway) and ``2n − 2`` diagonal updates.

**Lockstep batches.** All systems iterate together; after every iteration each system's residual
is checked, and systems that converged (or whose residual is no longer finite, or that reached
``max_iterations``) are recorded, so their ``x`` and iteration count freeze; the buffers shrink
as systems stop, so later iterations cost mostly the systems still running.

**Batch invariance.** A system's iterates, iteration count and residual are bit-identical
whether it is solved alone or inside any batch, on a given device: every update is the same
elementwise operation for every batch width (no width-dependent kernels), and every inner
product or norm is summed in a pairwise order fixed by the field size alone
(:func:`_fixed_order_sum`), never by a library reduction, whose order depends on the tensor's
shape (a CG solve could otherwise stop one iteration apart in a batch and alone). Measured on
2 shared CPU cores, one thread, against the earlier width-dependent kernels: a batch of one
takes about 1.5× as long (more, smaller operations), 256 systems 0.96–1.2× as long.

**Threads.** Only whole-buffer operations of wide batches (``(2n+1)(n+2)B`` elements, above
torch's 32768-element grain) use intra-op threads. On a 2-core machine, 2 torch threads solved
256 systems about 1.7× faster than 1 when the cores were free, but 3–30× slower when the cores
were also busy with other processes (OpenMP threads waiting for each other): on shared CPUs
prefer ``torch.set_num_threads(1)`` with one process per core.

**Sparse path.** :func:`sparse_sor_solve` and :func:`sparse_ssor_pcg_solve` run the same methods on
the CPU for one user SciPy matrix shared by the batch (per-system ``ω``, ``b``, ``x0``), with the
``B`` triangular systems stacked block-diagonally and solved by one
``scipy.sparse.linalg.spsolve_triangular`` call per sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, cast

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import spsolve_triangular

__all__ = [
    "SolveResult",
    "SparseSolveResult",
    "StencilSystems",
    "field_norm",
    "optimal_omega",
    "sor_solve",
    "sor_sweep",
    "sparse_sor_solve",
    "sparse_ssor_pcg_solve",
    "ssor_pcg_solve",
    "stencil_matvec",
]

_FLOAT = torch.float64
_OMEGA_RULE = "every omega must lie in the open interval (0, 2), where SOR converges for SPD A"


# -- the systems and results ----------------------------------------------------------------------
@dataclass(frozen=True)
class StencilSystems:
    """``B`` constant-coefficient 5-point systems on an ``n × n`` interior grid (see module doc).

    Attributes:
        diag: ``(B,)`` float64, the stencil centre ``d > 0``.
        off: ``(B,)`` float64, the neighbour weight ``e ≥ 0`` (the matrix entry is ``−e``).
        n: interior grid side; mesh width ``h = 1/(n+1)``, ``n²`` unknowns per system.

    Raises ``TypeError``/``ValueError`` unless ``d > 4e·cos(πh)`` for every system (``ρ_J < 1``,
    i.e. ``A`` is symmetric positive definite).
    """

    diag: torch.Tensor
    off: torch.Tensor
    n: int

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool):
            raise TypeError(f"n must be an int, got {type(self.n).__name__} {self.n!r}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1 (interior grid side), got {self.n}")
        for name in ("diag", "off"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            if value.dtype != _FLOAT:
                raise TypeError(f"{name} must have dtype torch.float64, got {value.dtype}")
            if value.ndim != 1:
                raise ValueError(f"{name} must have shape (B,), got {tuple(value.shape)}")
        d, e = self.diag, self.off
        if d.shape != e.shape:
            raise ValueError(
                f"diag and off must have the same shape, got {tuple(d.shape)} and {tuple(e.shape)}"
            )
        if d.device != e.device:
            raise ValueError(f"diag and off must be on one device, got {d.device} and {e.device}")
        _require(torch.isfinite(d) & (d > 0), "diag", d, "every d must be finite and > 0")
        _require(torch.isfinite(e) & (e >= 0), "off", e, "every e must be finite and >= 0")
        bound = 4.0 * e * self._cos_h
        _require(
            d > bound,
            "diag",
            d,
            f"SPD needs d > 4·e·cos(π/(n+1)) (n={self.n}, i.e. Jacobi radius < 1); "
            f"4·e·cos(π/(n+1)) = {_sample(bound, ~(d > bound))}",
        )

    @property
    def batch_size(self) -> int:
        return int(self.diag.shape[0])

    @property
    def device(self) -> torch.device:
        return self.diag.device

    @property
    def dtype(self) -> torch.dtype:
        return self.diag.dtype

    def jacobi_radius(self) -> torch.Tensor:
        """``ρ_J = 4e·cos(πh)/d``, ``h = 1/(n+1)``: the spectral radius of ``I − D⁻¹A``,
        shape ``(B,)``."""
        return 4.0 * self.off * self._cos_h / self.diag

    @property
    def _cos_h(self) -> float:
        """``cos(πh)``, the top eigenvalue of the 1-D neighbour average; 0 for ``n = 1``, which
        has no neighbours (``cos(π/2)`` is not exactly 0 in floating point)."""
        return math.cos(math.pi / (self.n + 1)) if self.n > 1 else 0.0


@dataclass(frozen=True)
class SolveResult:
    """The outcome of a batched grid solve.

    Attributes:
        x: ``(B, n, n)`` the final iterate of each system (frozen when it stopped).
        iterations: ``(B,)`` int64 SOR sweeps or CG iterations performed.
        residual: ``(B,)`` float64 final relative residual ``‖b − A x‖₂ / ‖b‖₂`` (``‖A x‖₂`` when
            ``b = 0``); non-finite if the iteration broke down.
        converged: ``(B,)`` bool, the tolerance was met within ``max_iterations``.
    """

    x: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor


@dataclass(frozen=True)
class SparseSolveResult:
    """The outcome of a batched sparse solve: numpy arrays ``x`` ``(B, N)``, ``iterations``
    ``(B,)`` int64, ``residual`` ``(B,)`` (relative, as in :class:`SolveResult`), ``converged``."""

    x: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    converged: np.ndarray


def optimal_omega(jacobi_radius: torch.Tensor) -> torch.Tensor:
    """Young's optimal relaxation ``ω* = 2 / (1 + sqrt(1 − ρ_J²))`` for consistently ordered
    matrices, elementwise; ``ρ_J`` must lie in ``[0, 1)``."""
    if not isinstance(jacobi_radius, torch.Tensor):
        raise TypeError(f"jacobi_radius must be a torch.Tensor, got {type(jacobi_radius).__name__}")
    rho = jacobi_radius.to(_FLOAT)
    _require((rho >= 0) & (rho < 1), "jacobi_radius", rho, "every ρ_J must lie in [0, 1)")
    return 2.0 / (1.0 + torch.sqrt(1.0 - rho * rho))


def stencil_matvec(systems: StencilSystems, x: torch.Tensor) -> torch.Tensor:
    """``A x`` for every system: ``d·x[i,j] − e·(sum of the 4 neighbours)``, zero outside the
    grid; ``x`` and the result have shape ``(B, n, n)``."""
    _check_field("x", x, systems)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    neighbours = (
        padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    )
    return systems.diag[:, None, None] * x - systems.off[:, None, None] * neighbours


# -- the wavefront layout -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Wavefront:
    """Index data of the ``(2n+1, n+2, B)`` anti-diagonal layout for one ``(n, device)``.

    ``slots[i·n + j] = q·(n+2) + r`` is the flat slot of grid point ``(i, j)``; ``interior`` is 1
    at the slots of ``[1:-1, 1:-1]`` that hold grid points, 0 elsewhere; ``bands[k] = (q, lo, hi)``
    says diagonal ``k = q − 1`` occupies rows ``lo:hi`` of slot plane ``q``.
    """

    n: int
    slots: torch.Tensor
    interior: torch.Tensor
    bands: tuple[tuple[int, int, int], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return 2 * self.n + 1, self.n + 2


@lru_cache(maxsize=64)
def _wavefront(n: int, device: torch.device) -> _Wavefront:
    i = torch.arange(n).repeat_interleave(n)
    j = torch.arange(n).repeat(n)
    slots = (i + j + 1) * (n + 2) + (i + 1)
    interior = torch.zeros((2 * n + 1) * (n + 2), dtype=_FLOAT)
    interior[slots] = 1.0
    interior = interior.view(2 * n + 1, n + 2)[1:-1, 1:-1].unsqueeze(-1).contiguous()
    bands = tuple((k + 1, max(0, k - n + 1) + 1, min(k, n - 1) + 2) for k in range(2 * n - 1))
    return _Wavefront(n, slots.to(device), interior.to(device), bands)


def _to_wave(x: torch.Tensor, wave: _Wavefront) -> torch.Tensor:
    """``(B, n, n)`` grid fields → ``(2n+1, n+2, B)`` wave layout with zeros off the grid."""
    rows, cols = wave.shape
    out = x.new_zeros(rows * cols, x.shape[0])
    out.index_copy_(0, wave.slots, x.flatten(1).T)
    return out.view(rows, cols, -1)


def _from_wave(w: torch.Tensor, wave: _Wavefront) -> torch.Tensor:
    """The inverse of :func:`_to_wave`."""
    rows, cols = wave.shape
    flat = w.reshape(rows * cols, -1).index_select(0, wave.slots)
    return flat.T.reshape(-1, wave.n, wave.n).contiguous()


class _Views(NamedTuple):
    """Slices of a wave-layout field ``u``: ``u[:, :-1]``, ``u[:, 1:]`` (row pairs), the
    interior ``u[1:-1, 1:-1]`` and ``u`` as an ``(M, B)`` matrix."""

    field: torch.Tensor
    head: torch.Tensor
    tail: torch.Tensor
    inner: torch.Tensor
    flat: torch.Tensor


class _WaveOps:
    """Stencil kernels on the wave layout for a fixed active batch of ``width`` systems.

    Holds scratch space and the slices of ``buffer`` the triangular recurrences use, made once
    (at these sizes, slicing costs as much as the arithmetic). ``gamma`` is ``γ = ωe/d`` ``(B,)``.
    A diagonal step ``y[q] += γ·(y[q−1, r−1] + y[q−1, r])`` is an add and a multiply-add on the
    contiguous diagonal slices, the same two elementwise operations for every batch width, so a
    system's iterate does not depend on which other systems share its batch (see
    :func:`_fixed_order_sum` for the reductions).
    """

    def __init__(self, wave: _Wavefront, buffer: torch.Tensor, gamma: torch.Tensor) -> None:
        rows, cols = wave.shape
        width = buffer.shape[-1]
        self.gamma = gamma
        self.buffer = buffer
        self.pair = buffer.new_empty(rows, cols - 1, width)
        self.pair_up_left, self.pair_down_right = self.pair[:-2, :-1], self.pair[2:, 1:]
        self.neighbours = buffer.new_empty(rows - 2, cols - 2, width)
        self._views: dict[int, _Views] = {}
        self.terms = buffer.new_empty((rows - 2) * (cols - 2), width)
        self.terms_inner = self.terms.view(rows - 2, cols - 2, width)
        self.tree = _tree_levels(self.terms)
        tmp = buffer.new_empty(wave.n, width)
        self.lower = [
            (buffer[q, lo:hi], buffer[q - 1, lo - 1 : hi - 1], buffer[q - 1, lo:hi], tmp[: hi - lo])
            for q, lo, hi in wave.bands[1:]
        ]
        self.upper = [
            (buffer[q, lo:hi], buffer[q + 1, lo + 1 : hi + 1], buffer[q + 1, lo:hi], tmp[: hi - lo])
            for q, lo, hi in reversed(wave.bands[:-1])
        ]

    def views(self, u: torch.Tensor) -> _Views:
        """The slices of the (contiguous) field ``u`` used every iteration, made once."""
        entry = self._views.get(id(u))
        if entry is None or entry.field is not u:
            entry = _Views(u, u[:, :-1], u[:, 1:], u[1:-1, 1:-1], u.view(-1, u.shape[-1]))
            self._views[id(u)] = entry
        return entry

    def dot(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``⟨u_k, v_k⟩`` of every system, ``(B,)``, over the interior slots (the others hold
        zeros), summed in the fixed order of :func:`_fixed_order_sum`."""
        return self._sum_of_products(u, v).clone()

    def norm(self, u: torch.Tensor) -> torch.Tensor:
        """``‖u_k‖₂`` of every system, ``(B,)``, batch-invariant like :meth:`dot`."""
        return torch.sqrt(self._sum_of_products(u, u))

    def _sum_of_products(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The tree sum of ``u·v`` over the interior slots, a view of the scratch space."""
        torch.mul(self.views(u).inner, self.views(v).inner, out=self.terms_inner)
        for first, last in self.tree:
            first.add_(last)
        return self.terms[0]

    def neighbour_sum(self, u: torch.Tensor) -> torch.Tensor:
        """Sum of the 4 neighbours of every interior slot of ``u``, ``(2n−1, n, B)``: the up and
        left ones are the pair ``(q−1, r−1) + (q−1, r)``, the down and right ones ``(q+1, r+1) +
        (q+1, r)``, so one pairwise sum along rows serves both."""
        views = self.views(u)
        torch.add(views.head, views.tail, out=self.pair)
        return torch.add(self.pair_up_left, self.pair_down_right, out=self.neighbours)

    def lower_solve_(self) -> None:
        """``buffer ← (I − γLₛ)⁻¹ buffer`` in place: ``y[q] += γ·(y[q−1, r−1] + y[q−1, r])``
        over the diagonals in increasing order."""
        self._recurrence(self.lower)

    def upper_solve_(self) -> None:
        """``buffer ← (I − γUₛ)⁻¹ buffer`` in place: ``z[q] += γ·(z[q+1, r+1] + z[q+1, r])``
        over the diagonals in decreasing order."""
        self._recurrence(self.upper)

    def _recurrence(self, steps: list[tuple[torch.Tensor, ...]]) -> None:
        for target, first, second, tmp in steps:
            torch.add(first, second, out=tmp)
            target.addcmul_(tmp, self.gamma)


def _apply_stencil(
    ops: _WaveOps, u: torch.Tensor, out: torch.Tensor, diag: torch.Tensor, off: torch.Tensor
) -> torch.Tensor:
    """``out ← A u`` on the wave layout; ``off`` is ``e`` times the interior mask, so slots off
    the grid stay zero."""
    neighbours = ops.neighbour_sum(u)
    inner = ops.views(out).inner
    torch.mul(ops.views(u).inner, diag, out=inner)
    inner.addcmul_(neighbours, off, value=-1.0)
    return out


def _scaled_residual(
    ops: _WaveOps,
    x: torch.Tensor,
    out: torch.Tensor,
    scaled_rhs: torch.Tensor,
    omega: torch.Tensor,
    scaled_off: torch.Tensor,
) -> torch.Tensor:
    """``out ← (ω/d)(b − A x) = (ω/d)b − ωx + γ·(neighbour sum)``, the input of the SOR forward
    substitution; ``scaled_rhs = (ω/d)b``, ``scaled_off = γ`` times the interior mask."""
    neighbours = ops.neighbour_sum(x)
    inner = ops.views(out).inner
    torch.addcmul(ops.views(scaled_rhs).inner, ops.views(x).inner, omega, value=-1.0, out=inner)
    inner.addcmul_(neighbours, scaled_off)
    return out


def _fixed_order_sum(terms: torch.Tensor) -> torch.Tensor:
    """Column sums of an ``(R, B)`` matrix, ``(B,)``, added in an order fixed by ``R`` alone;
    overwrites ``terms``.

    Each level adds the last ``⌊R/2⌋`` rows onto the first ones (a pairwise tree), so every sum
    is a sequence of elementwise additions whose order depends on the number of terms only, not
    on the batch width, the device or the memory layout. Library reductions (``sum``,
    ``vecdot``) pick their own order by shape: a column summed alone and the same column summed
    inside a batch could round differently, and a solver that stops at a tolerance would then
    stop one iteration apart in a batch and alone.
    """
    for first, last in _tree_levels(terms):
        first.add_(last)
    return terms[0]


def _tree_levels(terms: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(first rows, last rows)`` slices of :func:`_fixed_order_sum`'s levels: ``⌈log2 R⌉``
    in-place additions ``terms[:h] += terms[R − h : R]``, ``h = ⌊R/2⌋``, then ``R ← R − h``."""
    levels = []
    rows = terms.shape[0]
    while rows > 1:
        half = rows // 2
        levels.append((terms[:half], terms[rows - half : rows]))
        rows -= half
    return levels


def _column_dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inner products of the columns of two ``(M, B)`` matrices (flattened fields), ``(B,)``,
    batch-invariant (see :func:`_fixed_order_sum`)."""
    return _fixed_order_sum(torch.mul(u, v))


def _column_norm(u: torch.Tensor) -> torch.Tensor:
    """2-norms of the columns of ``(M, B)``, batch-invariant (see :func:`_fixed_order_sum`)."""
    return _column_dot(u, u).sqrt_()


def field_norm(x: torch.Tensor) -> torch.Tensor:
    """``‖x_k‖₂`` of every field of a ``(B, ...)`` batch, ``(B,)``, summed in an order fixed by
    the field size alone: a system's norm is bit-identical whatever batch it is computed in."""
    return _column_norm(x.reshape(x.shape[0], -1).T)


def _all_continue(gap: torch.Tensor, strict: bool) -> bool:
    """True when no system stops: every ``gap`` finite and ``> 0`` (``≥ 0`` if not ``strict``).
    One reduction and one host synchronisation; NaN fails both comparisons."""
    if gap.numel() == 1:
        low = high = gap.item()
    else:
        low, high = torch.stack(torch.aminmax(gap)).tolist()
    return (low > 0 if strict else low >= 0) and high < math.inf


# -- grid solvers ---------------------------------------------------------------------------------
class _Outcome:
    """Per-system results, filled in as systems stop: the wave-layout iterate, the iteration
    count, the final relative residual and the converged flag."""

    def __init__(self, x: torch.Tensor) -> None:
        batch, device = x.shape[-1], x.device
        self.x = x.clone()
        self.iterations = torch.zeros(batch, dtype=torch.int64, device=device)
        self.residual = torch.full((batch,), math.nan, dtype=_FLOAT, device=device)
        self.converged = torch.zeros(batch, dtype=torch.bool, device=device)

    def record(
        self,
        ids: torch.Tensor,
        done: torch.Tensor,
        x: torch.Tensor,
        count: int,
        residual: torch.Tensor,
        converged: torch.Tensor,
    ) -> None:
        """Store the systems ``ids[done]`` of the active batch, stopped after ``count``
        iterations."""
        stopped = ids[done]
        self.x[..., stopped] = x[..., done]
        self.iterations[stopped] = count
        self.residual[stopped] = residual[done]
        self.converged[stopped] = converged[done]

    def result(self, wave: _Wavefront) -> SolveResult:
        """The :class:`SolveResult`; call outside inference mode so the tensors are ordinary."""
        return SolveResult(
            _from_wave(self.x, wave),
            self.iterations.clone(),
            self.residual.clone(),
            self.converged.clone(),
        )


def _select(keep: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The columns ``keep`` of each per-system tensor (the batch is always the last axis)."""
    return tuple(t.index_select(-1, keep) for t in tensors)


def _relative_norm_scale(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``‖b‖₂`` per system and ``1/‖b‖₂`` (1 where ``b = 0``, so the test becomes absolute)."""
    norm = field_norm(b)
    return norm, 1.0 / torch.where(norm > 0, norm, torch.ones_like(norm))


def sor_sweep(
    systems: StencilSystems, x: torch.Tensor, b: torch.Tensor, omega: torch.Tensor
) -> torch.Tensor:
    """One lexicographic SOR sweep ``x + (D/ω + L)⁻¹(b − A x)`` for every system; returns the new
    ``(B, n, n)`` iterate and leaves ``x`` unchanged."""
    _check_field("x", x, systems)
    _check_field("b", b, systems)
    _check_omega(omega, systems)
    wave = _wavefront(systems.n, systems.device)
    with torch.inference_mode():
        gamma = omega * systems.off / systems.diag
        xw = _to_wave(x, wave)
        step = torch.zeros_like(xw)
        ops = _WaveOps(wave, step, gamma)
        scaled_rhs = _to_wave(b * (omega / systems.diag)[:, None, None], wave)
        _scaled_residual(ops, xw, step, scaled_rhs, omega, wave.interior * gamma)
        ops.lower_solve_()
        xw.add_(step)
    return _from_wave(xw, wave)


def sor_solve(
    systems: StencilSystems,
    b: torch.Tensor,
    x0: torch.Tensor,
    omega: torch.Tensor,
    *,
    rtol: float = 1e-8,
    max_iterations: int = 10_000,
) -> SolveResult:
    """Lexicographic SOR on every system until ``‖b − A x‖₂ ≤ rtol·‖b‖₂`` (``‖A x‖₂ ≤ rtol`` if
    ``b = 0``), tested before the first sweep and after every sweep.

    ``iterations`` counts sweeps (0 if ``x0`` already meets the tolerance). A system that reaches
    ``max_iterations`` sweeps, or whose residual stops being finite, stops with
    ``converged = False``. Systems run in lockstep and freeze when they stop (see module doc).
    """
    _check_solve_args(systems, b, x0, omega, rtol, max_iterations)
    wave = _wavefront(systems.n, systems.device)
    with torch.inference_mode():
        outcome = _Outcome(_to_wave(x0, wave))
        if systems.batch_size:
            _sor_iterate(systems, b, omega, rtol, max_iterations, wave, outcome)
    return outcome.result(wave)


def _sor_iterate(
    systems: StencilSystems,
    b: torch.Tensor,
    omega: torch.Tensor,
    rtol: float,
    max_iterations: int,
    wave: _Wavefront,
    outcome: _Outcome,
) -> None:
    """The lockstep SOR loop behind :func:`sor_solve` (runs in inference mode).

    Each sweep forms ``s = (ω/d)(b − A x)``, whose norm times ``d/ω`` is the residual norm, then
    ``x ← x + (I − γLₛ)⁻¹ s``. A stopped system is recorded, then *parked*: its scale becomes 0
    and its ``gap`` offset +1, so it never stops again, and it keeps sweeping its own system in
    its column, unseen (a system whose residual was not finite has its columns zeroed instead,
    which keeps them exactly zero). The buffers are compacted only once half of their columns
    are parked, so rebuilding them (and the slices of :class:`_WaveOps`) happens at most
    ``log2(B)`` times, while the parked columns cost at most as much as the live ones.
    """
    d = systems.diag
    gamma = omega * systems.off / d
    scale = d / omega * _relative_norm_scale(b)[1]
    offset = torch.full_like(scale, -rtol)  # gap = relative residual + offset; +1 when parked
    ids = torch.arange(systems.batch_size, device=systems.device)
    x = outcome.x.clone()
    scaled_rhs = _to_wave(b * (omega / d)[:, None, None], wave)
    scaled_off = wave.interior * gamma
    step = torch.zeros_like(x)
    ops = _WaveOps(wave, step, gamma)
    sweeps = 0
    while True:
        _scaled_residual(ops, x, step, scaled_rhs, omega, scaled_off)
        relative = ops.norm(step).mul_(scale)
        gap = relative + offset
        if sweeps == max_iterations or not _all_continue(gap, strict=True):
            live = offset < 0
            done = live if sweeps == max_iterations else ~(gap > 0) | ~torch.isfinite(gap)
            outcome.record(ids, done, x, sweeps, relative, relative <= rtol)
            live &= ~done
            remaining = int(live.sum())
            if remaining == 0:
                return
            if 2 * remaining <= live.numel():
                keep = torch.nonzero(live).squeeze(1)
                ids, x, step, scaled_rhs, scaled_off, omega, gamma, scale, offset = _select(
                    keep, ids, x, step, scaled_rhs, scaled_off, omega, gamma, scale, offset
                )
                ops = _WaveOps(wave, step, gamma)
            else:
                scale.masked_fill_(done, 0.0)
                offset.masked_fill_(done, 1.0)
                broken = done & ~torch.isfinite(relative)
                if bool(broken.any()):
                    for field in (x, step, scaled_rhs):
                        field.masked_fill_(broken, 0.0)
        ops.lower_solve_()
        x.add_(step)
        sweeps += 1


def ssor_pcg_solve(
    systems: StencilSystems,
    b: torch.Tensor,
    x0: torch.Tensor,
    omega: torch.Tensor,
    *,
    rtol: float = 1e-8,
    max_iterations: int = 10_000,
) -> SolveResult:
    """Conjugate gradients preconditioned by SSOR(ω) on every system.

    The stopping rule is SciPy's ``scipy.sparse.linalg.cg(A, b, x0, rtol=rtol, M=M⁻¹)``: before
    each iteration, stop if the recurrence residual satisfies ``‖r_k‖₂ < rtol·‖b‖₂`` (``< rtol``
    when ``b = 0``), so ``iterations`` matches SciPy's count. Unlike SciPy, the test is also made
    after the last allowed iteration. ``residual`` is the true ``‖b − A x‖₂ / ‖b‖₂`` of the
    returned ``x``; non-finite residuals stop a system with ``converged = False``.
    """
    _check_solve_args(systems, b, x0, omega, rtol, max_iterations)
    wave = _wavefront(systems.n, systems.device)
    with torch.inference_mode():
        outcome = _Outcome(_to_wave(x0, wave))
        if systems.batch_size:
            _pcg_iterate(systems, b, omega, rtol, max_iterations, wave, outcome)
            x = _from_wave(outcome.x, wave)
            true_residual = b - stencil_matvec(systems, x)
            outcome.residual = field_norm(true_residual) * _relative_norm_scale(b)[1]
    return outcome.result(wave)


def _pcg_iterate(
    systems: StencilSystems,
    b: torch.Tensor,
    omega: torch.Tensor,
    rtol: float,
    max_iterations: int,
    wave: _Wavefront,
    outcome: _Outcome,
) -> None:
    """The lockstep PCG loop behind :func:`ssor_pcg_solve` (runs in inference mode)."""
    d = systems.diag
    off = wave.interior * systems.off
    gamma = omega * systems.off / d
    forward_scale, middle_scale = omega / d, 2.0 - omega
    threshold = rtol / _relative_norm_scale(b)[1]
    ids = torch.arange(systems.batch_size, device=systems.device)
    x = outcome.x.clone()
    z, p, q = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
    ops = _WaveOps(wave, z, gamma)
    r = _to_wave(b, wave).sub_(_apply_stencil(ops, x, q, d, off))
    rho_old = torch.ones_like(d)
    it = 0
    while True:
        norm = ops.norm(r)
        gap = norm - threshold
        if it == max_iterations or not _all_continue(gap, strict=False):
            done = (gap < 0) | ~torch.isfinite(gap) | (it == max_iterations)
            outcome.record(ids, done, x, it, norm, gap < 0)
            keep = torch.nonzero(~done).squeeze(1)
            if keep.numel() == 0:
                return
            ids, x, r, p, z, q, off, d, gamma, forward_scale, middle_scale, threshold, rho_old = (
                _select(
                    keep,
                    ids,
                    x,
                    r,
                    p,
                    z,
                    q,
                    off,
                    d,
                    gamma,
                    forward_scale,
                    middle_scale,
                    threshold,
                    rho_old,
                )
            )
            ops = _WaveOps(wave, z, gamma)
        # z = M⁻¹ r = (I − γUₛ)⁻¹ (2 − ω) (I − γLₛ)⁻¹ (ω/d) r
        torch.mul(r, forward_scale, out=z)
        ops.lower_solve_()
        z.mul_(middle_scale)
        ops.upper_solve_()
        rho = ops.dot(r, z)
        if it == 0:
            p.copy_(z)
        else:
            p.mul_(rho / rho_old).add_(z)
        _apply_stencil(ops, p, q, d, off)
        alpha = rho / ops.dot(p, q)
        x.addcmul_(p, alpha)
        r.addcmul_(q, alpha, value=-1.0)
        rho_old = rho
        it += 1


# -- the sparse CPU path --------------------------------------------------------------------------
class _SparseBatch:
    """A sparse SPD matrix shared by ``B`` systems, each with its own ``ω``: the
    block-diagonal lower factor ``blockdiag_k(D/ω_k + L)`` and the matrix products."""

    def __init__(self, matrix: sp.csr_matrix, omega: np.ndarray) -> None:
        self.matrix = matrix
        self.diag = matrix.diagonal()
        self.strict_lower = sp.tril(matrix, k=-1, format="csr")
        self.set_omega(omega)

    def set_omega(self, omega: np.ndarray) -> None:
        """(Re)build the factor for the systems still active, with relaxation ``omega``."""
        self.omega = omega
        blocks = sp.kron(sp.identity(len(omega), format="csr"), self.strict_lower, format="csr")
        shifted = (self.diag[None, :] / omega[:, None]).ravel()
        self.lower = (blocks + sp.diags_array(shifted, format="csr")).tocsr()
        self._upper: sp.csr_matrix | None = None

    def residual(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``b − A x`` row by row, ``(B, N)``."""
        return b - (self.matrix @ x.T).T

    def sor_step(self, r: np.ndarray) -> np.ndarray:
        """``(D/ω + L)⁻¹ r`` for every row of ``r``: one triangular solve of the stacked batch."""
        return spsolve_triangular(self.lower, r.ravel(), lower=True).reshape(r.shape)

    def ssor_preconditioner(self, r: np.ndarray) -> np.ndarray:
        """``M⁻¹ r = (2−ω)/ω · (D/ω + U)⁻¹ D (D/ω + L)⁻¹ r`` for every row; ``D/ω + U`` is the
        transpose of ``D/ω + L`` because ``A`` is symmetric."""
        if self._upper is None:
            self._upper = self.lower.T.tocsr()
        y = self.sor_step(r) * self.diag
        z = spsolve_triangular(self._upper, y.ravel(), lower=False).reshape(r.shape)
        return z * ((2.0 - self.omega) / self.omega)[:, None]


def sparse_sor_solve(
    A: sp.spmatrix | sp.sparray,
    b: np.ndarray,
    x0: np.ndarray,
    omega: np.ndarray,
    *,
    rtol: float = 1e-8,
    max_iterations: int = 10_000,
) -> SparseSolveResult:
    """SOR ``x ← x + (D/ω + L)⁻¹(b − A x)`` for ``B`` right-hand sides ``b`` ``(B, N)`` sharing one
    sparse SPD matrix ``A`` ``(N, N)``, each with its own ``ω`` ``(B,)`` and ``x0`` ``(B, N)``; the
    stopping rule and the result's meaning are those of :func:`sor_solve`.

    The ``B`` lower-triangular factors ``D/ω_k + L`` are stacked into one block-diagonal matrix
    and solved with a single ``spsolve_triangular`` per sweep; it is rebuilt when systems stop.
    """
    matrix, b, x, omega = _check_sparse_args(A, b, x0, omega, rtol, max_iterations)
    batch = b.shape[0]
    system = _SparseBatch(matrix, omega)
    iterations, converged = np.zeros(batch, dtype=np.int64), np.zeros(batch, dtype=bool)
    residual = np.full(batch, np.nan)
    final_x = x.copy()
    inv_norm = 1.0 / _safe_norm(b)
    ids, rhs, sweeps = np.arange(batch), b, 0
    while ids.size:
        r = system.residual(rhs, x)
        relative = _row_norm(r) * inv_norm
        done = ~(relative > rtol) | ~np.isfinite(relative) | (sweeps == max_iterations)
        if done.any():
            final_x[ids[done]], iterations[ids[done]] = x[done], sweeps
            residual[ids[done]], converged[ids[done]] = relative[done], relative[done] <= rtol
            keep = ~done
            ids, x, r, rhs, inv_norm = ids[keep], x[keep], r[keep], rhs[keep], inv_norm[keep]
            if not ids.size:
                break
            system.set_omega(system.omega[keep])
        x += system.sor_step(r)
        sweeps += 1
    return SparseSolveResult(final_x, iterations, residual, converged)


def sparse_ssor_pcg_solve(
    A: sp.spmatrix | sp.sparray,
    b: np.ndarray,
    x0: np.ndarray,
    omega: np.ndarray,
    *,
    rtol: float = 1e-8,
    max_iterations: int = 10_000,
) -> SparseSolveResult:
    """SSOR(ω)-preconditioned CG for ``B`` right-hand sides sharing one sparse SPD matrix; the
    arguments are those of :func:`sparse_sor_solve`, the stopping rule (SciPy's ``cg``) and the
    result's meaning those of :func:`ssor_pcg_solve`."""
    matrix, b, x, omega = _check_sparse_args(A, b, x0, omega, rtol, max_iterations)
    batch = b.shape[0]
    system = _SparseBatch(matrix, omega)
    iterations, converged = np.zeros(batch, dtype=np.int64), np.zeros(batch, dtype=bool)
    final_x = x.copy()
    b_norm = _safe_norm(b)
    threshold = rtol * b_norm
    ids, it = np.arange(batch), 0
    r = system.residual(b, x)
    p, rho_old = np.zeros_like(r), np.ones(batch)
    while ids.size:
        gap = _row_norm(r) - threshold
        done = (gap < 0) | ~np.isfinite(gap) | (it == max_iterations)
        if done.any():
            final_x[ids[done]], iterations[ids[done]] = x[done], it
            converged[ids[done]] = gap[done] < 0
            keep = ~done
            ids, x, r, p = ids[keep], x[keep], r[keep], p[keep]
            threshold, rho_old = threshold[keep], rho_old[keep]
            if not ids.size:
                break
            system.set_omega(system.omega[keep])
        z = system.ssor_preconditioner(r)
        rho = _row_dot(r, z)
        p = z if it == 0 else z + (rho / rho_old)[:, None] * p
        q = (matrix @ p.T).T
        alpha = rho / _row_dot(p, q)
        x += alpha[:, None] * p
        r -= alpha[:, None] * q
        rho_old = rho
        it += 1
    residual = _row_norm(system.residual(b, final_x)) / b_norm
    return SparseSolveResult(final_x, iterations, residual, converged)


def _row_dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``⟨u_k, v_k⟩`` per row of two ``(B, N)`` arrays, summed in the pairwise order of
    :func:`_fixed_order_sum` (fixed by ``N``), so a row's value does not depend on ``B``."""
    terms = u * v
    rows = terms.shape[1]
    while rows > 1:
        half = rows // 2
        terms[:, :half] += terms[:, rows - half : rows]
        rows -= half
    return terms[:, 0].copy() if rows else np.zeros(terms.shape[0])


def _row_norm(u: np.ndarray) -> np.ndarray:
    """``‖u_k‖₂`` per row, batch-invariant like :func:`_row_dot`."""
    return np.sqrt(_row_dot(u, u))


def _safe_norm(b: np.ndarray) -> np.ndarray:
    """``‖b‖₂`` per row, with 1 for zero rows (the tolerance is then absolute)."""
    norm = _row_norm(b)
    return np.where(norm > 0, norm, 1.0)


# -- validation -----------------------------------------------------------------------------------
def _sample(
    values: torch.Tensor | np.ndarray, bad: torch.Tensor | np.ndarray, limit: int = 5
) -> str:
    """``values[bad]`` with their indices, at most ``limit`` of them, for error messages."""
    index = np.flatnonzero(np.asarray(bad.cpu() if isinstance(bad, torch.Tensor) else bad))
    array = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values).reshape(-1)
    shown = ", ".join(f"[{i}]={array[i].item()!r}" for i in index[:limit])
    return shown + (f" (and {index.size - limit} more)" if index.size > limit else "")


def _require(ok: torch.Tensor, name: str, values: torch.Tensor, rule: str) -> None:
    if not bool(ok.all()):
        raise ValueError(f"{name}: {rule}; got {_sample(values, ~ok)}")


def _check_field(name: str, value: object, systems: StencilSystems) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype != _FLOAT:
        raise TypeError(f"{name} must have dtype torch.float64, got {value.dtype}")
    shape = (systems.batch_size, systems.n, systems.n)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape (B, n, n) = {shape}, got {tuple(value.shape)}")
    if value.device != systems.device:
        raise ValueError(f"{name} is on {value.device} but the systems are on {systems.device}")


def _check_omega(omega: object, systems: StencilSystems) -> None:
    if not isinstance(omega, torch.Tensor):
        raise TypeError(f"omega must be a torch.Tensor of shape (B,), got {type(omega).__name__}")
    if omega.dtype != _FLOAT:
        raise TypeError(f"omega must have dtype torch.float64, got {omega.dtype}")
    if tuple(omega.shape) != (systems.batch_size,):
        raise ValueError(
            f"omega must have shape (B,) = ({systems.batch_size},), got {tuple(omega.shape)}"
        )
    if omega.device != systems.device:
        raise ValueError(f"omega is on {omega.device} but the systems are on {systems.device}")
    _require((omega > 0) & (omega < 2), "omega", omega, _OMEGA_RULE)


def _check_tolerances(rtol: object, max_iterations: object) -> None:
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int):
        raise ValueError(f"max_iterations must be an int >= 0, got {max_iterations!r}")
    if max_iterations < 0:
        raise ValueError(f"max_iterations must be an int >= 0, got {max_iterations!r}")


def _check_solve_args(
    systems: object, b: object, x0: object, omega: object, rtol: object, max_iterations: object
) -> None:
    if not isinstance(systems, StencilSystems):
        raise TypeError(f"systems must be a StencilSystems, got {type(systems).__name__}")
    _check_field("b", b, systems)
    _check_field("x0", x0, systems)
    _check_omega(omega, systems)
    _check_tolerances(rtol, max_iterations)
    for name, value in (("b", b), ("x0", x0)):
        finite = torch.isfinite(cast(torch.Tensor, value)).flatten(1).all(dim=1)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten()[:5].tolist()
            raise ValueError(f"{name} must be finite; systems {bad} hold NaN or inf entries")


def _check_sparse_args(
    A: object, b: object, x0: object, omega: object, rtol: object, max_iterations: object
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Check the sparse solvers' input; returns ``A`` as CSR and float64 copies of ``b``, ``x0``
    and ``omega``. ``A`` must be square, finite, symmetric to ``1e-12`` relative and have a
    positive diagonal (definiteness is the caller's to check: it costs a factorisation)."""
    if not sp.issparse(A):
        raise TypeError(f"A must be a SciPy sparse matrix, got {type(A).__name__}")
    matrix = sp.csr_matrix(A, dtype=np.float64)
    size, cols = matrix.shape
    if size != cols:
        raise ValueError(f"A must be square, got shape {size}×{cols}")
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError("A must have finite entries")
    scale = max(float(abs(matrix).max()), 1e-300) if matrix.nnz else 1e-300
    asymmetry = float(abs(matrix - matrix.T).max()) if matrix.nnz else 0.0
    if asymmetry > 1e-12 * scale:
        raise ValueError(
            f"A must be symmetric to 1e-12 relative (SOR and SSOR-CG need SPD A), got "
            f"max |A − Aᵀ| = {asymmetry:.3g} with max |A| = {scale:.3g}"
        )
    diag = matrix.diagonal()
    if np.any(diag <= 0):
        raise ValueError(f"A must have a positive diagonal (SPD), got {_sample(diag, diag <= 0)}")
    _check_tolerances(rtol, max_iterations)
    arrays = []
    for name, value, shape in (("b", b, "(B, N)"), ("x0", x0, "(B, N)"), ("omega", omega, "(B,)")):
        if not isinstance(value, np.ndarray):
            got = type(value).__name__
            raise TypeError(f"{name} must be a numpy array of shape {shape}, got {got}")
        arrays.append(np.array(value, dtype=np.float64))
    rhs, start, relax = arrays
    if rhs.ndim != 2 or rhs.shape[1] != size:
        raise ValueError(f"b must have shape (B, N) with N = {size}, got {rhs.shape}")
    if start.shape != rhs.shape:
        raise ValueError(f"x0 must have the shape of b, {rhs.shape}, got {start.shape}")
    if relax.shape != (rhs.shape[0],):
        raise ValueError(f"omega must have shape (B,) = ({rhs.shape[0]},), got {relax.shape}")
    for name, value in (("b", rhs), ("x0", start)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be finite")
    ok = (relax > 0) & (relax < 2)
    if not ok.all():
        raise ValueError(f"omega: {_OMEGA_RULE}; got {_sample(relax, ~ok)}")
    return matrix, rhs, start, relax
