"""Whittle indices of a single restless arm, by value iteration and bisection over the subsidy.

Whittle (1988): relax the "pull B arms" constraint with a Lagrange multiplier λ, a *subsidy*
paid for every passive step. For one arm, the index of state ``s`` is the subsidy at which the
passive and active actions are equally good in ``s``; for an indexable arm the active action is
optimal in ``s`` exactly when λ < index(s). The Whittle policy pulls the arms whose current
states have the largest indices.

Here the single-arm problem with subsidy λ is solved by value iteration — discounted
(``discount=γ < 1``) or average-reward (``discount=None``: relative value iteration, which
needs a unichain, aperiodic arm) — and the indifference point is found by bisection on λ.
``reward[a, s]`` is the expected reward of action ``a`` in state ``s``; an arm whose reward
is earned on the next state, ``r(s')``, has ``reward[a] = P_a r``.
"""

from __future__ import annotations

import numpy as np


def _q_gap(
    P: np.ndarray, R: np.ndarray, subsidy: np.ndarray, discount: float | None, tol: float
) -> np.ndarray:
    """Q(s, active) − Q(s, passive) of the single arm for each subsidy in ``subsidy`` (K,):
    shape (K, S), all K problems iterated together."""
    gamma = 1.0 if discount is None else discount
    reward = R[None] + np.stack([subsidy, np.zeros_like(subsidy)], 1)[:, :, None]  # (K, 2, S)
    h = np.zeros((len(subsidy), P.shape[1]))
    for _ in range(1_000_000):
        new = (reward + gamma * np.einsum("ast,kt->kas", P, h)).max(1)
        if discount is None:
            new = new - new[:, :1]  # relative value iteration: pin state 0
        done = np.max(np.abs(new - h)) < tol
        h = new
        if done:
            break
    q = reward + gamma * np.einsum("ast,kt->kas", P, h)
    return q[:, 1] - q[:, 0]


def whittle_indices(
    P0: np.ndarray,
    P1: np.ndarray,
    R: np.ndarray,
    *,
    discount: float | None = 0.95,
    tol: float = 1e-7,
) -> np.ndarray:
    """The Whittle index of every state of one arm.

    ``P0``, ``P1``: (S, S) passive and active transition matrices (rows sum to 1); ``R``: (S,)
    a reward per state (the same for both actions) or (2, S) per action and state;
    ``discount``: γ ∈ [0, 1), or ``None`` for the average-reward criterion.
    """
    P = np.stack([np.asarray(P0, dtype=np.float64), np.asarray(P1, dtype=np.float64)])
    S = P.shape[1]
    if P.shape != (2, S, S) or not np.allclose(P.sum(2), 1.0) or np.any(P < 0):
        raise ValueError("P0 and P1 must be square stochastic matrices of the same size")
    R = np.asarray(R, dtype=np.float64)
    R = np.broadcast_to(R, (2, S)) if R.shape == (S,) else R
    if R.shape != (2, S):
        raise ValueError(f"R must have shape ({S},) or (2, {S}), got {R.shape}")
    if discount is not None and not 0.0 <= discount < 1.0:
        raise ValueError(f"discount must be in [0, 1) or None (average reward), got {discount}")
    horizon = 1.0 if discount is None else 1.0 / (1.0 - discount)
    bound = (np.ptp(R) + 1.0) * horizon * 2.0
    lo, hi = np.full(S, -bound), np.full(S, bound)
    while np.max(hi - lo) > 10 * tol:
        mid = 0.5 * (lo + hi)
        # row s: the problem with subsidy mid[s]; active still better in s → the index is above it
        above = np.diagonal(_q_gap(P, R, mid, discount, tol * 1e-2)) > 0
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def birth_death_matrix(p_up: float, num_states: int = 4) -> np.ndarray:
    """The coRMAB arm's chain: up to ``min(s+1, S−1)`` with ``p_up``, else down to ``max(s−1, 0)``."""
    P = np.zeros((num_states, num_states))
    for s in range(num_states):
        P[s, min(s + 1, num_states - 1)] += p_up
        P[s, max(s - 1, 0)] += 1.0 - p_up
    return P


def arm_indices(
    p_passive: float, p_active: float, rewards: np.ndarray, discount: float = 0.95
) -> np.ndarray:
    """Whittle indices of one coRMAB arm (reward on the next state, discounted)."""
    P0, P1 = birth_death_matrix(p_passive), birth_death_matrix(p_active)
    R = np.stack([P0 @ rewards, P1 @ rewards])
    return whittle_indices(P0, P1, R, discount=discount)
