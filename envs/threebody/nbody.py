"""Newtonian gravity for batches of small N-body systems, in N-body units (G = 1).

Every function takes tensors with a leading batch dimension ``B``: positions and velocities
``(B, N, 3)``, masses ``(B, N)``, all float64, on any device. Pairwise quantities are built on
the list of the ``P = N(N−1)/2`` pairs ``I < J`` (N is small: 3 by default), so a whole batch is
a handful of tensor operations with no Python loop over systems or bodies.

The force law is computed in the *planar* layout ``(N, K, B)`` — bodies, components, systems —
where every operation runs over contiguous runs of ``B`` systems (the ``planar_*`` functions;
the integrators keep their state in it for a whole :meth:`~.integrators.Integrator.advance`).
With ``B`` innermost a tiny pairwise matrix product becomes a few long elementwise operations:
about 6× faster on CPU than batched ``(B, N, 3)`` matrix products of 3 × 3 blocks.

Units. N-body units set ``G = 1``; the three-body environments measure mass in units of the
system's total mass (3 M☉ for the paper's triple) and length in au, so one time unit is
``sqrt(au³ / (G · 3 M☉))`` ≈ 0.0919 yr (:data:`YEAR` time units make a year) and one velocity
unit ≈ 51.6 km/s (:data:`KM_PER_S` is 1 km/s in these units).
"""

from __future__ import annotations

import math

import torch

# Physical constants (IAU 2015 nominal solar GM, IAU 2012 au, Julian year).
GM_SUN = 1.3271244e20  # m^3 s^-2
AU = 1.495978707e11  # m
JULIAN_YEAR = 365.25 * 86400.0  # s
PAPER_TOTAL_MASS = 3.0  # M☉: the mass unit of the paper's triple


def _velocity_unit(total_mass_msun: float) -> float:
    return math.sqrt(GM_SUN * total_mass_msun / AU)  # m/s


#: One Julian year in N-body time units (mass unit 3 M☉, length unit 1 au).
YEAR = JULIAN_YEAR * _velocity_unit(PAPER_TOTAL_MASS) / AU
#: One km/s in N-body velocity units (mass unit 3 M☉, length unit 1 au).
KM_PER_S = 1e3 / _velocity_unit(PAPER_TOTAL_MASS)


_CACHE: dict[tuple, torch.Tensor] = {}  # small constant tensors, per (what, n, device, dtype)


def _pair_index(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n(n−1)/2`` pairs ``(I[p], J[p])`` with ``I < J``."""
    key = ("pairs", n, device)
    if key not in _CACHE:
        _CACHE[key] = torch.triu_indices(n, n, offset=1, device=device)
    i, j = _CACHE[key]
    return i, j


def pair_weights(masses: torch.Tensor) -> torch.Tensor:
    """The signed mass matrix ``W`` (B, N, P) that turns pair terms into body sums:
    ``W[i, p] = m_J`` if ``i = I_p``, ``−m_I`` if ``i = J_p``, else 0 (Newton's third law),
    so that ``a_i = Σ_p W[i, p] (x_J − x_I)_p / r_p³``."""
    n = masses.shape[1]
    i, j = _pair_index(n, masses.device)
    body = torch.arange(n, device=masses.device).unsqueeze(1)
    return (body == i).to(masses.dtype) * masses[:, j].unsqueeze(1) - (body == j).to(
        masses.dtype
    ) * masses[:, i].unsqueeze(1)


def to_planar(values: torch.Tensor) -> torch.Tensor:
    """``(B, N, K)`` → the planar layout ``(N, K, B)`` (systems innermost, contiguous)."""
    return values.permute(1, 2, 0).contiguous()


def from_planar(values: torch.Tensor) -> torch.Tensor:
    """The planar layout ``(N, K, B)`` → ``(B, N, K)``."""
    return values.permute(2, 0, 1).contiguous()


def planar_separations(values: torch.Tensor) -> torch.Tensor:
    """``v_J − v_I`` for every pair, ``(P, K, B)`` from planar ``(N, K, B)``: row copies, so
    every later operation runs on contiguous runs of ``B`` systems."""
    i, j = _pair_index(values.shape[0], values.device)
    return values.index_select(0, j) - values.index_select(0, i)


def planar_body_sums(weights: torch.Tensor, pair_terms: torch.Tensor) -> torch.Tensor:
    """``Σ_p W[i, p] t_p``, planar ``(N, K, B)`` from ``weights`` ``(N, P, B)`` and pair terms
    ``(P, K, B)``; the pairs are summed in order, so each system's sum is the same in any batch."""
    total = weights[:, 0:1] * pair_terms[0]
    for p in range(1, pair_terms.shape[0]):
        total = total + weights[:, p : p + 1] * pair_terms[p]
    return total


def planar_accelerations(positions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:func:`accelerations` in the planar layout: positions ``(N, 3, B)``, weights
    ``(N, P, B)``; returns ``(N, 3, B)``."""
    d = planar_separations(positions)
    r2 = (d * d).sum(1, keepdim=True)
    return planar_body_sums(weights, d * (r2 * r2.sqrt()).reciprocal())


def planar_accelerations_and_jerks(
    positions: torch.Tensor, velocities: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`accelerations_and_jerks` in the planar layout (``(N, 3, B)`` each)."""
    dw = planar_separations(torch.cat([positions, velocities], dim=1))
    d, w = dw[:, :3], dw[:, 3:]
    r2 = (d * d).sum(1, keepdim=True)
    inv_r3 = (r2 * r2.sqrt()).reciprocal()
    rdot = 3.0 * (d * w).sum(1, keepdim=True) / r2
    both = planar_body_sums(weights, torch.cat([d * inv_r3, (w - rdot * d) * inv_r3], dim=1))
    return both[:, :3], both[:, 3:]


def planar_collision_time(
    positions: torch.Tensor, velocities: torch.Tensor, masses: torch.Tensor
) -> torch.Tensor:
    """:func:`collision_time` in the planar layout: ``(N, 3, B)``, masses ``(N, B)``; ``(B,)``."""
    i, j = _pair_index(masses.shape[0], masses.device)
    dw = planar_separations(torch.cat([positions, velocities], dim=1))
    r2 = (dw[:, :3] * dw[:, :3]).sum(1)  # (P, B)
    w2 = (dw[:, 3:] * dw[:, 3:]).sum(1)
    crossing2 = r2 / w2  # inf for a pair at relative rest
    free_fall2 = r2 * r2.sqrt() / (masses.index_select(0, i) + masses.index_select(0, j))
    return torch.minimum(crossing2, free_fall2).amin(dim=0).sqrt()


def accelerations(positions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``a_i = Σ_j m_j (x_j − x_i) / r_ij³``, shape (B, N, 3); ``weights`` is
    :func:`pair_weights` of the masses."""
    return from_planar(planar_accelerations(to_planar(positions), to_planar(weights)))


def accelerations_and_jerks(
    positions: torch.Tensor, velocities: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accelerations and their time derivatives (jerks), each (B, N, 3).

    ``j_i = Σ_j m_j [w_ij / r³ − 3 (d_ij·w_ij) d_ij / r⁵]`` with ``d_ij = x_j − x_i``,
    ``w_ij = v_j − v_i``: the analytic derivative the Hermite scheme needs (one "force
    evaluation" computes both). ``weights`` is :func:`pair_weights` of the masses.
    """
    acc, jerk = planar_accelerations_and_jerks(
        to_planar(positions), to_planar(velocities), to_planar(weights)
    )
    return from_planar(acc), from_planar(jerk)


def collision_time(
    positions: torch.Tensor, velocities: torch.Tensor, masses: torch.Tensor
) -> torch.Tensor:
    """The system's shortest dynamical time, shape (B,).

    ``t_coll = min over pairs i<j of min(r_ij / |v_ij|, sqrt(r_ij³ / (m_i + m_j)))``: the
    crossing time of the closest approach and the free-fall time of the tightest pair. The
    adaptive integrators take steps of ``η · t_coll``.
    """
    return planar_collision_time(to_planar(positions), to_planar(velocities), masses.T)


def _separations(values: torch.Tensor) -> torch.Tensor:
    """``v_J − v_I`` for every pair, (B, P, K) from (B, N, K)."""
    i, j = _pair_index(values.shape[1], values.device)
    return values[:, j] - values[:, i]


def kinetic_energy(velocities: torch.Tensor, masses: torch.Tensor) -> torch.Tensor:
    """``Σ_i m_i |v_i|² / 2``, shape (B,)."""
    return 0.5 * (masses * (velocities * velocities).sum(-1)).sum(-1)


def potential_energy(positions: torch.Tensor, masses: torch.Tensor) -> torch.Tensor:
    """``−Σ_{i<j} m_i m_j / r_ij``, shape (B,)."""
    i, j = _pair_index(masses.shape[1], masses.device)
    r = torch.linalg.vector_norm(_separations(positions), dim=-1)
    return -(masses[:, i] * masses[:, j] / r).sum(-1)


def energy(positions: torch.Tensor, velocities: torch.Tensor, masses: torch.Tensor) -> torch.Tensor:
    """Total energy (kinetic + potential), shape (B,)."""
    return kinetic_energy(velocities, masses) + potential_energy(positions, masses)


def angular_momentum(
    positions: torch.Tensor, velocities: torch.Tensor, masses: torch.Tensor
) -> torch.Tensor:
    """``L = Σ_i m_i x_i × v_i``, shape (B, 3)."""
    return (masses.unsqueeze(-1) * torch.linalg.cross(positions, velocities)).sum(1)


def center_of_mass(
    positions: torch.Tensor, velocities: torch.Tensor, masses: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre-of-mass position and velocity, each (B, 3)."""
    weights = (masses / masses.sum(-1, keepdim=True)).unsqueeze(-1)
    return (weights * positions).sum(1), (weights * velocities).sum(1)


def to_center_of_mass_frame(
    positions: torch.Tensor, velocities: torch.Tensor, masses: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same systems with their centre of mass at rest at the origin."""
    com_x, com_v = center_of_mass(positions, velocities, masses)
    return positions - com_x.unsqueeze(1), velocities - com_v.unsqueeze(1)


def validate_systems(
    positions: torch.Tensor, velocities: torch.Tensor, masses: torch.Tensor
) -> None:
    """Raise ``ValueError`` unless every system is a valid gravitating system: shapes
    (B, N, 3)/(B, N, 3)/(B, N) with N ≥ 2, finite values, masses > 0, no two bodies at the
    same position."""
    if positions.ndim != 3 or positions.shape[-1] != 3 or positions.shape[1] < 2:
        raise ValueError(f"positions must have shape (B, N ≥ 2, 3), got {tuple(positions.shape)}")
    if velocities.shape != positions.shape:
        raise ValueError(
            f"velocities must have the positions' shape {tuple(positions.shape)}, got {tuple(velocities.shape)}"
        )
    if masses.shape != positions.shape[:2]:
        raise ValueError(
            f"masses must have shape {tuple(positions.shape[:2])}, got {tuple(masses.shape)}"
        )
    for name, value in (("positions", positions), ("velocities", velocities), ("masses", masses)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must be finite, got {value.tolist()}")
    if bool((masses <= 0).any()):
        raise ValueError(f"masses must be > 0, got {masses.tolist()}")
    i, j = _pair_index(masses.shape[1], masses.device)
    coincide = (_separations(positions) == 0).all(-1)
    if bool(coincide.any()):
        system, pair = torch.nonzero(coincide).unbind(1)
        pairs = torch.stack([system, i[pair], j[pair]], 1).tolist()
        raise ValueError(f"bodies must not coincide: (system, body, body) {pairs} share a position")
