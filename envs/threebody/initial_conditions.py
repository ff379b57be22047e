"""Initial conditions for the three-body environments, drawn per (seed, episode) key.

Every generator takes an int64 key tensor ``(B,)`` (see :mod:`rlsuite.keyed_random`) and
returns ``(positions (B, N, 3), velocities (B, N, 3), masses (B, N))`` in N-body units
(G = 1), float64, in the centre-of-mass frame. All sets are planar (z = 0), as in the paper.

* ``paper`` — Saz Ulibarrena & Portegies Zwart (2025), Sec. 3: three bodies of 1 M☉; body 0 at
  the origin moving (0, 10) km/s, body 1 at x ~ U[5, 20], y ~ U[0, 10] au moving (−10, 0) km/s,
  body 2 at x ~ U[−10, 0], y ~ U[5, 20] au at rest; then moved to the centre-of-mass frame.
  Units: mass unit = the total mass (3 M☉), length unit = 1 au (so 1 km/s =
  :data:`~rlsuite.envs.threebody.nbody.KM_PER_S` ≈ 0.0194 and 1 yr =
  :data:`~rlsuite.envs.threebody.nbody.YEAR` ≈ 10.88 time units).
* ``figure_eight`` — the Chenciner–Montgomery choreography (m = 1 each, G = 1, period
  6.3259140): ``x1 = −x2 = (0.97000436, −0.24308753)``, ``x3 = 0``,
  ``v1 = v2 = (0.466203685, 0.43236573)``, ``v3 = −2 v1``; every coordinate then gets a seeded
  perturbation ``perturbation · N(0, 1)`` (0 gives the exact orbit, which is stable).
* ``random_bound`` — N bodies of equal mass (total 1) on a ring: radius ~ U[5, 15] au, body k at
  angle ``2πk/N + U(−π/2N, π/2N)`` (so no two start close), velocities in random directions
  with magnitudes ~ U[0, 1], rescaled so that the virial ratio ``T/|U|`` ~ U[0.1, 0.5]: total
  energy ``E = T + U < 0``, a bound system.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from rlsuite.envs.threebody import nbody

from rlsuite import keyed_random

IC_SETS = ("paper", "figure_eight", "random_bound")
FIGURE_EIGHT_PERIOD = 6.3259140
FIGURE_EIGHT_ENERGY = -1.28714199  # published value for the truncated initial conditions
_FIGURE_EIGHT_X = (0.97000436, -0.24308753)
_FIGURE_EIGHT_V = (0.466203685, 0.43236573)

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _planar(xy: torch.Tensor) -> torch.Tensor:
    return torch.cat([xy, torch.zeros_like(xy[..., :1])], dim=-1)


def paper_triple(key: torch.Tensor, masses_msun: Sequence[float] = (1.0, 1.0, 1.0)) -> State:
    """The paper's triple (see the module docstring); ``masses_msun`` are the three masses in M☉
    (the mass unit is their sum, the length unit 1 au)."""
    if len(masses_msun) != 3:
        raise ValueError(f"the paper's initial conditions have 3 bodies, got masses {masses_msun}")
    if any(not m > 0 for m in masses_msun):
        raise ValueError(f"masses must be > 0 (in M☉), got {list(masses_msun)}")
    total = float(sum(masses_msun))
    km_per_s = 1e3 / math.sqrt(nbody.GM_SUN * total / nbody.AU)
    u = keyed_random.uniform(key, 4)
    batch = key.shape[0]
    xy = torch.zeros(batch, 3, 2, dtype=torch.float64, device=key.device)
    xy[:, 1, 0] = 5.0 + 15.0 * u[:, 0]
    xy[:, 1, 1] = 10.0 * u[:, 1]
    xy[:, 2, 0] = -10.0 + 10.0 * u[:, 2]
    xy[:, 2, 1] = 5.0 + 15.0 * u[:, 3]
    vxy = torch.zeros_like(xy)
    vxy[:, 0, 1] = 10.0 * km_per_s
    vxy[:, 1, 0] = -10.0 * km_per_s
    masses = torch.tensor(masses_msun, dtype=torch.float64, device=key.device) / total
    masses = masses.expand(batch, 3).clone()
    x, v = nbody.to_center_of_mass_frame(_planar(xy), _planar(vxy), masses)
    return x, v, masses


def figure_eight(key: torch.Tensor, perturbation: float = 1e-3) -> State:
    """The figure-eight choreography with a seeded perturbation of every coordinate."""
    if not (isinstance(perturbation, (int, float)) and 0 <= perturbation < 0.1):
        raise ValueError(f"perturbation must be a number in [0, 0.1), got {perturbation!r}")
    batch, device = key.shape[0], key.device
    x1 = torch.tensor(_FIGURE_EIGHT_X, dtype=torch.float64, device=device)
    v1 = torch.tensor(_FIGURE_EIGHT_V, dtype=torch.float64, device=device)
    xy = torch.stack([x1, -x1, torch.zeros_like(x1)])
    vxy = torch.stack([v1, v1, -2.0 * v1])
    noise = perturbation * keyed_random.normal(key, 12).view(batch, 2, 3, 2)
    masses = torch.ones(batch, 3, dtype=torch.float64, device=device)
    x, v = nbody.to_center_of_mass_frame(
        _planar(xy + noise[:, 0]), _planar(vxy + noise[:, 1]), masses
    )
    return x, v, masses


def random_bound(key: torch.Tensor, n_bodies: int = 3) -> State:
    """N equal masses on a ring with random velocities scaled to a bound virial ratio."""
    batch, device = key.shape[0], key.device
    u = keyed_random.uniform(key, 4 * n_bodies + 1)
    radius = 5.0 + 10.0 * u[:, :n_bodies]
    sector = 2.0 * math.pi / n_bodies
    jitter = sector / 2 * (u[:, n_bodies : 2 * n_bodies] - 0.5)  # U(−π/2N, π/2N)
    angle = sector * torch.arange(n_bodies, device=device) + jitter
    xy = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
    direction = 2.0 * math.pi * u[:, 2 * n_bodies : 3 * n_bodies]
    speed = u[:, 3 * n_bodies : 4 * n_bodies]
    vxy = torch.stack([speed * torch.cos(direction), speed * torch.sin(direction)], dim=-1)
    masses = torch.full((batch, n_bodies), 1.0 / n_bodies, dtype=torch.float64, device=device)
    x, v = nbody.to_center_of_mass_frame(_planar(xy), _planar(vxy), masses)
    virial = 0.1 + 0.4 * u[:, 4 * n_bodies]
    kinetic = nbody.kinetic_energy(v, masses)
    potential = nbody.potential_energy(x, masses)
    v = v * torch.sqrt(virial * potential.abs() / kinetic).view(-1, 1, 1)
    return x, v, masses


def custom(state: dict[str, Sequence], batch: int, device: torch.device) -> State:
    """A user system ``{"masses": [N], "positions": [N][2 or 3], "velocities": [N][2 or 3]}`` in
    N-body units, validated and moved to the centre-of-mass frame, repeated ``batch`` times."""
    missing = {"masses", "positions", "velocities"} - set(state)
    if missing:
        raise ValueError(
            f"initial_state needs keys masses, positions, velocities; missing {sorted(missing)}"
        )
    tensors = []
    for name in ("positions", "velocities"):
        value = torch.as_tensor(state[name], dtype=torch.float64, device=device)
        if value.ndim != 2 or value.shape[1] not in (2, 3):
            raise ValueError(
                f"initial_state[{name!r}] must be N rows of 2 or 3 numbers, got {state[name]!r}"
            )
        tensors.append(_planar(value) if value.shape[1] == 2 else value)
    masses = torch.as_tensor(state["masses"], dtype=torch.float64, device=device)
    x, v, m = (t.unsqueeze(0).expand(batch, *t.shape).clone() for t in (*tensors, masses))
    nbody.validate_systems(x, v, m)
    x, v = nbody.to_center_of_mass_frame(x, v, m)
    return x, v, m
