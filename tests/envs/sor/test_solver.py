"""Tests of the batched SOR / SSOR-PCG core against theory and independent SciPy references.

References are built here from scratch (the 5-point matrix as a Kronecker sum of 1-D
tridiagonals, triangular factors from ``scipy.sparse.tril``), never from the solver's code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rlsuite.envs.sor.solver import (
    SolveResult,
    SparseSolveResult,
    StencilSystems,
    optimal_omega,
    sor_solve,
    sor_sweep,
    sparse_sor_solve,
    sparse_ssor_pcg_solve,
    ssor_pcg_solve,
    stencil_matvec,
)
from scipy.sparse.linalg import LinearOperator, cg, spsolve, spsolve_triangular

F64 = torch.float64
N_GRID = 10
OMEGA_STAR_C0 = 1.560388  # Young's ω* for the 10×10 Laplacian, ρ_J = cos(π/11)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run with one intra-op thread. The solver's tensors are small (≤ 10⁵ elements): a second
    thread gains at most ~1.7× on free cores, but when the cores are also busy with other work
    (pytest-xdist, a loaded CI runner) OpenMP threads waiting for each other made these tests
    ~10× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- independent references -----------------------------------------------------------------------
def stencil_matrix(n: int, d: float, e: float) -> sp.csr_matrix:
    """``d·I − e·(K ⊗ I + I ⊗ K)`` with ``K`` the 1-D path adjacency, row-major unknowns."""
    path = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1])
    eye = sp.identity(n)
    return sp.csr_matrix(d * sp.identity(n * n) - e * (sp.kron(path, eye) + sp.kron(eye, path)))


def ssor_operator(A: sp.csr_matrix, omega: float) -> LinearOperator:
    """``M⁻¹ = (2−ω)/ω · (D/ω + U)⁻¹ D (D/ω + L)⁻¹`` from SciPy's triangular parts of ``A``."""
    D = sp.diags(A.diagonal())
    lower = sp.csr_matrix(D / omega + sp.tril(A, k=-1))
    upper = sp.csr_matrix(D / omega + sp.triu(A, k=1))

    def apply(r: np.ndarray) -> np.ndarray:
        y = spsolve_triangular(lower, np.ravel(r), lower=True)
        return (2.0 - omega) / omega * spsolve_triangular(upper, D @ y, lower=False)

    return LinearOperator(A.shape, matvec=apply, dtype=np.float64)


def scipy_pcg_iterations(A: sp.csr_matrix, b: np.ndarray, omega: float, rtol: float) -> int:
    """Iterations SciPy's ``cg`` takes with the SSOR preconditioner (callbacks counted)."""
    count = [0]

    def callback(_: np.ndarray) -> None:
        count[0] += 1

    _, info = cg(A, b, rtol=rtol, M=ssor_operator(A, omega), callback=callback, maxiter=10_000)
    assert info == 0
    return count[0]


def young_radius(omega: float, rho_j: float) -> float:
    """Young's spectral radius of the SOR iteration matrix of a consistently ordered matrix."""
    star = 2.0 / (1.0 + math.sqrt(1.0 - rho_j**2))
    if omega >= star:
        return omega - 1.0
    return (omega * rho_j / 2 + math.sqrt(omega**2 * rho_j**2 / 4 - (omega - 1.0))) ** 2


def shifted(c: list[float] | torch.Tensor, n: int = N_GRID) -> StencilSystems:
    c = torch.as_tensor(c, dtype=F64)
    return StencilSystems(diag=4.0 + c, off=torch.ones_like(c), n=n)


def gaussian(batch: int, n: int = N_GRID, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n, n, dtype=F64, generator=torch.Generator().manual_seed(seed))


def full(batch: int, value: float) -> torch.Tensor:
    return torch.full((batch,), value, dtype=F64)


# -- 1. Young's theory ----------------------------------------------------------------------------
def test_optimal_omega_matches_young() -> None:
    rho = torch.tensor([math.cos(math.pi / 11)], dtype=F64)
    assert optimal_omega(rho).item() == pytest.approx(OMEGA_STAR_C0, abs=1e-6)
    assert shifted([0.0]).jacobi_radius().item() == pytest.approx(math.cos(math.pi / 11), abs=1e-15)
    assert optimal_omega(torch.zeros(1, dtype=F64)).item() == 1.0


@pytest.mark.parametrize("omega", [1.0, 1.2, 1.4, "star", 1.6, 1.8, 1.9])
def test_sor_operator_spectral_radius_matches_young(omega: float | str) -> None:
    """The env's own iteration operator, assembled column by column by sweeping the unit basis
    vectors with ``b = 0`` (the batch axis holds the 100 basis vectors).

    At ``ω*`` the operator is defective (2×2 Jordan blocks), so eigenvalues are in general only
    accurate to ``sqrt(eps)``; here every eigenvalue at ``ω ≥ ω*`` lies on the circle
    ``|λ| = ω − 1`` and the rounding error moves them along it, so ``max |λ|`` is still exact:
    the observed error is below 1e-14 at every ω including ``ω*``, and the test asserts 1e-10
    (the brief asked for 1e-6)."""
    rho_j = math.cos(math.pi / 11)
    w = float(optimal_omega(torch.tensor([rho_j], dtype=F64))) if omega == "star" else float(omega)
    size = N_GRID * N_GRID
    basis = torch.eye(size, dtype=F64).reshape(size, N_GRID, N_GRID)
    swept = sor_sweep(shifted([0.0] * size), basis, torch.zeros_like(basis), full(size, w))
    operator = swept.reshape(size, size).T.numpy()
    radius = np.abs(np.linalg.eigvals(operator)).max()
    assert radius == pytest.approx(young_radius(w, rho_j), abs=1e-10)


# -- 2. the iteration-minimising ω ----------------------------------------------------------------
def test_best_grid_omega_is_near_young_optimum() -> None:
    shifts = [-0.15, 0.0, 0.45]
    grid = 1.0 + torch.arange(100, dtype=F64) / 100
    c = torch.tensor(shifts, dtype=F64).repeat_interleave(len(grid))
    b = gaussian(1, seed=7).expand(len(c), N_GRID, N_GRID).contiguous()
    result = sor_solve(shifted(c), b, torch.zeros_like(b), grid.repeat(len(shifts)))
    assert bool(result.converged.all())
    iterations = result.iterations.reshape(len(shifts), len(grid))
    for row, shift in zip(iterations, shifts, strict=True):
        rho_j = torch.tensor([4 * math.cos(math.pi / 11) / (4 + shift)], dtype=F64)
        best = grid[int(torch.argmin(row))].item()
        assert best == pytest.approx(optimal_omega(rho_j).item(), abs=0.03), (shift, row.tolist())


# -- 3. solutions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("solve", [sor_solve, ssor_pcg_solve])
def test_solutions_meet_tolerance_and_match_spsolve(solve: Callable[..., SolveResult]) -> None:
    shifts, omegas = [-0.15, 0.0, 0.2, 0.45], [1.9, 1.5, 1.0, 1.3]
    b = gaussian(len(shifts), seed=1)
    result = solve(shifted(shifts), b, torch.zeros_like(b), torch.tensor(omegas, dtype=F64))
    assert isinstance(result, SolveResult) and bool(result.converged.all())
    assert result.x.shape == b.shape and result.iterations.dtype == torch.int64
    for k, shift in enumerate(shifts):
        A, rhs = stencil_matrix(N_GRID, 4 + shift, 1.0), b[k].reshape(-1).numpy()
        x = result.x[k].reshape(-1).numpy()
        true_residual = np.linalg.norm(rhs - A @ x) / np.linalg.norm(rhs)
        assert true_residual <= 1e-8 * (1 + 1e-9)
        assert result.residual[k].item() == pytest.approx(true_residual, rel=1e-6)
        reference = spsolve(A.tocsc(), rhs)
        assert np.linalg.norm(x - reference) / np.linalg.norm(reference) < 1e-6


def test_stencil_matvec_matches_assembled_matrix() -> None:
    d, e = torch.tensor([4.0, 1.8], dtype=F64), torch.tensor([1.0, 0.2], dtype=F64)
    systems = StencilSystems(d, e, 6)
    x = gaussian(2, n=6, seed=3)
    out = stencil_matvec(systems, x)
    for k, (d, e) in enumerate([(4.0, 1.0), (1.8, 0.2)]):
        expected = stencil_matrix(6, d, e) @ x[k].reshape(-1).numpy()
        np.testing.assert_allclose(out[k].reshape(-1).numpy(), expected, rtol=0, atol=1e-14)


# -- 4. SSOR-PCG against SciPy --------------------------------------------------------------------
def test_ssor_pcg_iterations_match_scipy_cg() -> None:
    cases = [(-0.15, 1.0), (-0.15, 1.7), (0.0, 1.2), (0.0, 1.9), (0.45, 1.5), (0.3, 0.6)]
    b = gaussian(len(cases), seed=2)
    omega = torch.tensor([w for _, w in cases], dtype=F64)
    result = ssor_pcg_solve(shifted([c for c, _ in cases]), b, torch.zeros_like(b), omega)
    # The same cases tiled to a wide batch (the elementwise recurrence) count the same.
    tiled = b.repeat(10, 1, 1)
    wide = ssor_pcg_solve(
        shifted([c for c, _ in cases] * 10), tiled, torch.zeros_like(tiled), omega.repeat(10)
    )
    assert wide.iterations.tolist() == result.iterations.tolist() * 10
    for k, (shift, w) in enumerate(cases):
        A = stencil_matrix(N_GRID, 4 + shift, 1.0)
        expected = scipy_pcg_iterations(A, b[k].reshape(-1).numpy(), w, 1e-8)
        assert abs(int(result.iterations[k]) - expected) <= 1, (shift, w)


# -- 5. one sweep against a dense reference ------------------------------------------------------
@pytest.mark.parametrize("copies", [1, 20])
def test_sor_sweep_matches_dense_forward_substitution(copies: int) -> None:
    """Three systems swept alone (a batch of one), together, and tiled to 60 (the three code
    paths of the diagonal recurrence) against dense forward substitution."""
    shifts, omegas = [-0.15, 0.1, 0.45] * copies, [1.85, 1.0, 0.4] * copies
    x, b = gaussian(len(shifts), seed=4), gaussian(len(shifts), seed=5)
    before = x.clone()
    swept = sor_sweep(shifted(shifts), x, b, torch.tensor(omegas, dtype=F64))
    assert torch.equal(x, before)  # the input is not modified
    alone = [
        sor_sweep(shifted(shifts[k : k + 1]), x[k : k + 1], b[k : k + 1], full(1, omegas[k]))[0]
        for k in range(3)
    ]
    for k, (shift, w) in enumerate(zip(shifts, omegas, strict=True)):
        A = stencil_matrix(N_GRID, 4 + shift, 1.0).toarray()
        lower = np.diag(np.diag(A)) / w + np.tril(A, k=-1)
        xk, bk = x[k].reshape(-1).numpy(), b[k].reshape(-1).numpy()
        expected = xk + scipy.linalg.solve_triangular(lower, bk - A @ xk, lower=True)
        np.testing.assert_allclose(swept[k].reshape(-1).numpy(), expected, rtol=0, atol=1e-12)
        if k < 3:
            np.testing.assert_allclose(alone[k].reshape(-1).numpy(), expected, rtol=0, atol=1e-12)


def test_sor_solve_is_repeated_sweeps() -> None:
    systems, b, w = shifted([0.1, 0.3]), gaussian(2, seed=6), torch.tensor([1.4, 1.1], dtype=F64)
    result = sor_solve(systems, b, torch.zeros_like(b), w, max_iterations=5)
    x = torch.zeros_like(b)
    for _ in range(5):
        x = sor_sweep(systems, x, b, w)
    assert result.iterations.tolist() == [5, 5] and not bool(result.converged.any())
    np.testing.assert_allclose(result.x.numpy(), x.numpy(), rtol=0, atol=1e-13)


# -- 6. batch consistency -------------------------------------------------------------------------
def assert_same_results(got: SolveResult, want: SolveResult, rows: slice) -> None:
    """Bit-identical iterates, iteration counts, residuals and flags for the systems ``rows``."""
    assert torch.equal(got.iterations, want.iterations[rows])
    assert torch.equal(got.converged, want.converged[rows])
    assert torch.equal(got.x, want.x[rows])
    assert torch.equal(got.residual, want.residual[rows])


@pytest.mark.parametrize("solve", [sor_solve, ssor_pcg_solve])
def test_batch_gives_the_same_answers_as_single_solves(solve: Callable[..., SolveResult]) -> None:
    """A system solved alone and inside a batch gives bit-identical results: the updates are the
    same elementwise operations for every batch width and the inner products are summed in a
    fixed order (before, CG's batched and single solves differed by ~1e-10 in ``x`` and, for
    some (system, ω) pairs, by one iteration)."""
    shifts = torch.tensor([-0.15, -0.05, 0.0, 0.05, 0.15, 0.25, 0.35, 0.45], dtype=F64)
    omega = torch.tensor([1.0, 1.9, 1.55, 1.3, 1.7, 1.2, 1.45, 1.1], dtype=F64)
    b, x0 = gaussian(8, seed=8), 0.1 * gaussian(8, seed=9)
    batched = solve(shifted(shifts), b, x0, omega)
    assert len(set(batched.iterations.tolist())) > 4  # systems really stop at different sweeps
    for k in range(8):
        rows = slice(k, k + 1)
        single = solve(shifted(shifts[rows]), b[rows], x0[rows], omega[rows])
        assert_same_results(single, batched, rows)


@pytest.mark.parametrize("solve", [sor_solve, ssor_pcg_solve])
def test_results_do_not_depend_on_the_batch_size(solve: Callable[..., SolveResult]) -> None:
    """256 random (system, ω) pairs solved as one batch, and again in batches of 64, 7 (the last
    one 4 wide), 2 and 1: every system's result is bit-identical in all five runs."""
    count, n = 256, 6
    rng = torch.Generator().manual_seed(2026)
    shifts = -0.15 + 0.6 * torch.rand(count, generator=rng, dtype=F64)
    omega = 1.0 + 0.98 * torch.rand(count, generator=rng, dtype=F64)
    b = torch.randn(count, n, n, generator=rng, dtype=F64)
    x0 = 0.1 * torch.randn(count, n, n, generator=rng, dtype=F64)
    everything = solve(shifted(shifts, n), b, x0, omega)
    assert everything.converged.all() and len(set(everything.iterations.tolist())) > 5
    for size in (64, 7, 2, 1):
        for start in range(0, count, size):
            rows = slice(start, start + size)
            part = solve(shifted(shifts[rows], n), b[rows], x0[rows], omega[rows])
            assert_same_results(part, everything, rows)


@pytest.mark.parametrize("solve", [sparse_sor_solve, sparse_ssor_pcg_solve])
def test_sparse_batch_gives_the_same_answers_as_single_solves(
    solve: Callable[..., SparseSolveResult],
) -> None:
    """The sparse path is batch-invariant too (CG's inner products are summed in a fixed
    order; before, ``np.einsum`` made the batched iterates differ in the last bits)."""
    A = sp.csr_matrix(stencil_matrix(6, 4.05, 1.0))
    rng = np.random.default_rng(5)
    b, omega = rng.standard_normal((24, 36)), rng.uniform(1.0, 1.95, 24)
    x0 = 0.1 * rng.standard_normal((24, 36))
    batched = solve(A, b, x0, omega)
    for k in range(24):
        single = solve(A, b[k : k + 1], x0[k : k + 1], omega[k : k + 1])
        assert single.iterations[0] == batched.iterations[k]
        np.testing.assert_array_equal(single.x[0], batched.x[k])
        np.testing.assert_array_equal(single.residual[0], batched.residual[k])


# -- 7. the sparse path ---------------------------------------------------------------------------
def test_sparse_sor_matches_grid_sor() -> None:
    omega = np.array([1.0, 1.3, 1.56, 1.75, 1.95])
    b = gaussian(len(omega), seed=10)
    grid = sor_solve(shifted([0.0] * len(omega)), b, torch.zeros_like(b), torch.from_numpy(omega))
    A = stencil_matrix(N_GRID, 4.0, 1.0)
    rhs = b.reshape(len(omega), -1).numpy()
    sparse = sparse_sor_solve(A, rhs, np.zeros_like(rhs), omega)
    # ±0: both run exact lexicographic SOR; only rounding differs, and no residual lands
    # within rounding distance of the tolerance here.
    assert sparse.iterations.tolist() == grid.iterations.tolist()
    assert sparse.converged.all() and np.all(sparse.residual <= 1e-8)
    np.testing.assert_allclose(sparse.x, grid.x.reshape(len(omega), -1).numpy(), rtol=0, atol=1e-10)


def test_sparse_ssor_pcg_matches_scipy_cg() -> None:
    A = stencil_matrix(N_GRID, 3.9, 1.0)
    omega = np.array([0.8, 1.2, 1.5, 1.9])
    rhs = gaussian(len(omega), seed=11).reshape(len(omega), -1).numpy()
    result = sparse_ssor_pcg_solve(A, rhs, np.zeros_like(rhs), omega)
    assert result.converged.all() and np.all(result.residual < 1e-8 * 1.01)
    for k, w in enumerate(omega):
        assert abs(int(result.iterations[k]) - scipy_pcg_iterations(A, rhs[k], w, 1e-8)) <= 1


def test_sparse_solvers_accept_a_non_grid_matrix() -> None:
    rng = np.random.default_rng(12)
    M = sp.random(40, 40, density=0.1, random_state=rng)
    A = sp.csr_matrix(M @ M.T + 5 * sp.identity(40))
    rhs = rng.standard_normal((3, 40))
    omega = np.array([0.9, 1.2, 1.6])
    for solve in (sparse_sor_solve, sparse_ssor_pcg_solve):
        result = solve(A, rhs, np.zeros_like(rhs), omega)
        assert result.converged.all()
        exact = np.linalg.solve(A.toarray(), rhs.T).T
        np.testing.assert_allclose(result.x, exact, rtol=0, atol=1e-6)


# -- 8. bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.0, 2.0, 2.5, -0.3, math.nan])
def test_omega_outside_open_interval_is_rejected(bad: float) -> None:
    systems, b = shifted([0.0, 0.0]), gaussian(2)
    omega = torch.tensor([1.5, bad], dtype=F64)
    for call in (
        lambda: sor_solve(systems, b, torch.zeros_like(b), omega),
        lambda: ssor_pcg_solve(systems, b, torch.zeros_like(b), omega),
        lambda: sor_sweep(systems, b, b, omega),
    ):
        with pytest.raises(ValueError, match=r"\(0, 2\)"):
            call()
    A, rhs = stencil_matrix(4, 4.0, 1.0), np.ones((2, 16))
    for solve in (sparse_sor_solve, sparse_ssor_pcg_solve):
        with pytest.raises(ValueError, match=r"\(0, 2\)"):
            solve(A, rhs, np.zeros_like(rhs), omega.numpy())


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (sp.csr_matrix(np.ones((3, 4))), "square"),
        (sp.csr_matrix(np.array([[2.0, 1.0], [0.5, 2.0]])), "symmetric"),
        (sp.csr_matrix(np.array([[2.0, 1.0], [1.0, 0.0]])), "positive diagonal"),
        (sp.csr_matrix(np.array([[2.0, 0.0], [0.0, -1.0]])), "positive diagonal"),
    ],
)
def test_bad_sparse_matrix_is_rejected(matrix: sp.csr_matrix, message: str) -> None:
    rhs = np.ones((1, matrix.shape[1]))
    for solve in (sparse_sor_solve, sparse_ssor_pcg_solve):
        with pytest.raises(ValueError, match=message):
            solve(matrix, rhs, np.zeros_like(rhs), np.array([1.5]))


def test_non_spd_stencil_is_rejected() -> None:
    n = 10
    boundary = 4.0 * math.cos(math.pi / (n + 1))  # d at which A becomes singular (e = 1)
    with pytest.raises(ValueError, match="SPD"):
        StencilSystems(torch.tensor([4.0, boundary], dtype=F64), torch.ones(2, dtype=F64), n)
    with pytest.raises(ValueError, match="SPD"):
        StencilSystems(torch.tensor([3.0], dtype=F64), torch.ones(1, dtype=F64), n)
    with pytest.raises(ValueError, match="diag"):
        StencilSystems(torch.tensor([0.0], dtype=F64), torch.zeros(1, dtype=F64), n)
    with pytest.raises(ValueError, match="off"):
        StencilSystems(torch.tensor([4.0], dtype=F64), torch.tensor([-1.0], dtype=F64), n)
    with pytest.raises(TypeError, match="float64"):
        StencilSystems(torch.tensor([4.0]), torch.tensor([1.0]), n)
    with pytest.raises(ValueError, match="shape"):
        StencilSystems(torch.ones(2, dtype=F64), torch.ones(3, dtype=F64), n)


def test_bad_fields_are_rejected() -> None:
    systems, b, w = shifted([0.0]), gaussian(1), full(1, 1.5)
    with pytest.raises(ValueError, match="shape"):
        sor_solve(systems, b[:, :5], torch.zeros_like(b), w)
    with pytest.raises(TypeError, match="float64"):
        sor_solve(systems, b.float(), torch.zeros_like(b), w)
    with pytest.raises(ValueError, match="finite"):
        sor_solve(systems, b * math.inf, torch.zeros_like(b), w)
    with pytest.raises(ValueError, match="rtol"):
        sor_solve(systems, b, torch.zeros_like(b), w, rtol=0.0)
    with pytest.raises(ValueError, match="max_iterations"):
        ssor_pcg_solve(systems, b, torch.zeros_like(b), w, max_iterations=-1)


# -- stopping rules and edge cases ----------------------------------------------------------------
@pytest.mark.parametrize("solve", [sor_solve, ssor_pcg_solve])
def test_stopping_rules(solve: Callable[..., SolveResult]) -> None:
    systems, b = shifted([0.0, 0.0, 0.0, 0.0]), gaussian(4, seed=13)
    b[1] = 0.0
    x0 = torch.zeros_like(b)
    exact = spsolve(stencil_matrix(N_GRID, 4.0, 1.0).tocsc(), b[2].reshape(-1).numpy())
    x0[2] = torch.from_numpy(exact).reshape(N_GRID, N_GRID)
    result = solve(systems, b, x0, full(4, 1.5), max_iterations=4)
    # b = 0 with x0 = 0 and an exact x0 converge at once; system 0 hits the cap, and so does 3.
    assert result.iterations.tolist() == [4, 0, 0, 4]
    assert result.converged.tolist() == [False, True, True, False]
    assert result.residual[1].item() == 0.0 and result.residual[0].item() > 1e-8
    untouched = solve(systems, b, x0, full(4, 1.5), max_iterations=0)
    assert untouched.iterations.tolist() == [0, 0, 0, 0]
    assert torch.equal(untouched.x, x0)


def test_zero_rhs_with_nonzero_start_uses_absolute_residual() -> None:
    b = torch.zeros(1, N_GRID, N_GRID, dtype=F64)
    x0 = gaussian(1, seed=14)
    result = sor_solve(shifted([0.2]), b, x0, full(1, 1.4), rtol=1e-6)
    assert bool(result.converged.item())
    assert torch.linalg.vector_norm(stencil_matvec(shifted([0.2]), result.x)).item() <= 1e-6


def test_overflowing_system_freezes_without_touching_others() -> None:
    b = gaussian(3, seed=15)
    b[1] *= 1e300  # finite input whose squared norms overflow: the residual is not finite
    result = sor_solve(shifted([0.0, 0.0, 0.0]), b, torch.zeros_like(b), full(3, 1.5))
    assert result.converged.tolist() == [True, False, True]
    assert result.iterations[1].item() == 0
    alone = sor_solve(shifted([0.0]), b[:1], torch.zeros_like(b[:1]), full(1, 1.5))
    assert result.iterations[0].item() == alone.iterations.item()
    assert bool(torch.isfinite(result.x[0]).all() and torch.isfinite(result.x[2]).all())


def test_empty_batch() -> None:
    empty = torch.zeros(0, dtype=F64)
    b = torch.zeros(0, 4, 4, dtype=F64)
    result = sor_solve(StencilSystems(empty, empty, 4), b, b, empty)
    assert result.x.shape == (0, 4, 4) and result.iterations.shape == (0,)


def test_heat_type_systems_with_tiny_coupling() -> None:
    """Crank–Nicolson systems ``d = 1 + 4α``, ``e = α``, including ``α = 0`` (diagonal)."""
    alpha = torch.tensor([0.0, 1e-6, 0.3, 20.0], dtype=F64)
    systems = StencilSystems(1 + 4 * alpha, alpha, 8)
    b = gaussian(4, n=8, seed=16)
    for solve in (sor_solve, ssor_pcg_solve):
        omega = torch.tensor([1.0, 1.2, 1.2, 1.2], dtype=F64)
        result = solve(systems, b, torch.zeros_like(b), omega)
        assert bool(result.converged.all())
        # α = 0 is D x = b: one SOR sweep at ω = 1 is exact, and SSOR(1) is then M = A.
        assert result.iterations[0].item() == 1
        for k in range(4):
            A = stencil_matrix(8, 1 + 4 * alpha[k].item(), alpha[k].item())
            rhs = b[k].reshape(-1).numpy()
            x = result.x[k].reshape(-1).numpy()
            residual = np.linalg.norm(rhs - A @ x) / np.linalg.norm(rhs)
            assert residual <= 1e-8 * (1 + 1e-9)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_grids(n: int) -> None:
    d, e = torch.tensor([4.0, 2.5], dtype=F64), torch.tensor([1.0, 0.6], dtype=F64)
    systems = StencilSystems(d, e, n)
    b = gaussian(2, n=n, seed=18)
    for solve in (sor_solve, ssor_pcg_solve):
        result = solve(systems, b, torch.zeros_like(b), torch.tensor([1.3, 0.7], dtype=F64))
        assert bool(result.converged.all())
        for k in range(2):
            A = stencil_matrix(n, float(d[k]), float(e[k])).toarray()
            exact = np.linalg.solve(A, b[k].reshape(-1).numpy())
            np.testing.assert_allclose(result.x[k].reshape(-1).numpy(), exact, rtol=0, atol=1e-7)


def test_results_are_ordinary_tensors() -> None:
    """The solvers run in inference mode internally; what they return must be usable normally."""
    b = gaussian(2)
    result = sor_solve(shifted([0.0, 0.1]), b, torch.zeros_like(b), full(2, 1.5))
    for tensor in (result.x, result.iterations, result.residual, result.converged):
        assert not tensor.is_inference()
    result.x[0] = 0.0  # in-place writes (as the environments do) must not raise


# -- 9. property test -----------------------------------------------------------------------------
@settings(max_examples=12, deadline=None)
@given(
    c=st.floats(min_value=-0.15, max_value=0.45),
    omega=st.floats(min_value=1.0, max_value=1.95),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_converged_solutions_satisfy_the_residual_bound(c: float, omega: float, seed: int) -> None:
    b = gaussian(1, seed=seed)
    cap = 3000
    for solve in (sor_solve, ssor_pcg_solve):
        result = solve(shifted([c]), b, torch.zeros_like(b), full(1, omega), max_iterations=cap)
        assert 0 <= result.iterations.item() <= cap
        assert bool(result.converged.item())
        A, rhs = stencil_matrix(N_GRID, 4 + c, 1.0), b[0].reshape(-1).numpy()
        x = result.x[0].reshape(-1).numpy()
        assert np.linalg.norm(rhs - A @ x) / np.linalg.norm(rhs) <= 1e-8 * (1 + 1e-9)


# -- 10. GPU --------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:  # skipped without CUDA by tests/conftest.py
    shifts = torch.linspace(-0.15, 0.45, 16, dtype=F64)
    omega = torch.linspace(1.0, 1.9, 16, dtype=F64)
    b = gaussian(16, seed=17)
    for solve in (sor_solve, ssor_pcg_solve):
        cpu = solve(shifted(shifts), b, torch.zeros_like(b), omega)
        gpu = solve(shifted(shifts.cuda()), b.cuda(), torch.zeros_like(b).cuda(), omega.cuda())
        assert gpu.x.device.type == "cuda"
        assert (gpu.iterations.cpu() - cpu.iterations).abs().max().item() <= 1
        np.testing.assert_allclose(gpu.x.cpu().numpy(), cpu.x.numpy(), rtol=0, atol=1e-7)
        assert bool(gpu.converged.all())
