"""Linear algebra over GF(2), batched in torch: row reduction, rank, kernel, row-space tests.

Matrices are ``uint8`` (or ``bool``) tensors of shape ``(B, m, n)`` with entries 0/1, on any
device; a single ``(m, n)`` matrix (tensor or numpy array) is a batch of one. Padding is
harmless: zero rows change no rank, and zero *columns* are free variables of the kernel, so
:func:`kernel` takes the number of real columns when the batch is padded. Addition is XOR.

Gaussian elimination loops over the ``n`` columns (one vectorised step per column for the whole
batch), never over matrices.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class RowEchelon(NamedTuple):
    """Reduced row echelon form ``R`` (``(B, m, n)``: pivot rows first, then zeros), the pivot
    column of each row (``(B, m)``, −1 below the rank) and the rank (``(B,)``)."""

    reduced: torch.Tensor
    pivots: torch.Tensor
    rank: torch.Tensor


def as_batch(matrix: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A bool ``(B, m, n)`` tensor from a matrix or batch of 0/1 entries."""
    t = matrix if isinstance(matrix, torch.Tensor) else torch.from_numpy(np.array(matrix))
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3:
        raise ValueError(
            f"expected a matrix (m, n) or a batch (B, m, n), got shape {tuple(t.shape)}"
        )
    if t.dtype != torch.bool:
        if bool(((t != 0) & (t != 1)).any()):
            raise ValueError("GF(2) matrices must have entries 0 or 1")
        t = t != 0
    return t


def row_reduce(
    matrix: torch.Tensor | np.ndarray, columns: torch.Tensor | None = None
) -> RowEchelon:
    """Reduced row echelon form of every matrix in the batch. ``columns`` (``(B, n)`` int64, a
    permutation per matrix) eliminates the columns in that order instead of left to right (the
    pivots are then in permuted positions; ``reduced`` keeps the original column order)."""
    R = as_batch(matrix).clone()
    B, m, n = R.shape
    dev = R.device
    rows = torch.arange(m, device=dev)
    batch = torch.arange(B, device=dev)
    rank = torch.zeros(B, dtype=torch.int64, device=dev)
    pivots = torch.full((B, m), -1, dtype=torch.int64, device=dev)
    for step in range(n):
        col = columns[:, step] if columns is not None else torch.full((B,), step, device=dev)
        entries = R[batch, :, col]  # (B, m)
        candidate = entries & (rows[None, :] >= rank[:, None])
        has = candidate.any(1) & (rank < m)
        pivot_row = torch.argmax(candidate.to(torch.uint8), dim=1)  # first candidate row
        # swap the pivot row into position `rank`
        target = rank.clamp(max=m - 1)
        top, piv = R[batch, target].clone(), R[batch, pivot_row].clone()
        R[batch, target] = torch.where(has[:, None], piv, top)
        R[batch, pivot_row] = torch.where(has[:, None], top, R[batch, pivot_row])
        # eliminate the column from every other row
        pivot_vec = R[batch, target]  # (B, n)
        column = R[batch, :, col] & (rows[None, :] != target[:, None]) & has[:, None]
        R ^= column[:, :, None] & pivot_vec[:, None, :]
        pivots[batch, target] = torch.where(has, col, pivots[batch, target])
        rank = rank + has.long()
    return RowEchelon(R, pivots, rank)


def rank(matrix: torch.Tensor | np.ndarray) -> torch.Tensor | int:
    """GF(2) rank: an int for a single numpy matrix, else a ``(B,)`` tensor."""
    r = row_reduce(matrix).rank
    return int(r[0]) if isinstance(matrix, np.ndarray) and matrix.ndim == 2 else r


def kernel(
    matrix: torch.Tensor | np.ndarray,
    num_columns: torch.Tensor | None = None,
    columns: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A basis of ``{x : H x = 0}`` for each matrix: ``(basis (B, n, n) bool, valid (B, n))``,
    one row per free column (rows where ``valid`` is False are padding). Only the first
    ``num_columns[b]`` columns are real (default all). With ``columns`` (a permutation per
    matrix, real columns first) elimination follows that order, so each basis vector has a
    single free column and the pivot columns the permutation reached first: the random
    information sets of :mod:`rlsuite.envs.qcode.distance`."""
    H = as_batch(matrix)
    B, _, n = H.shape
    dev = H.device
    if num_columns is None:
        num_columns = torch.full((B,), n, dtype=torch.int64, device=dev)
    echelon = row_reduce(H, columns)
    R, pivots, _ = echelon
    is_pivot = torch.zeros(B, n + 1, dtype=torch.bool, device=dev)
    is_pivot.scatter_(1, torch.where(pivots >= 0, pivots, n), True)
    is_pivot = is_pivot[:, :n]
    real = torch.arange(n, device=dev)[None, :] < num_columns[:, None]
    free = ~is_pivot & real  # (B, n)
    # basis vector for free column f: e_f + Σ_rows with R[row, f] = 1 of e_{pivot(row)}
    eye = torch.eye(n, dtype=torch.bool, device=dev).expand(B, n, n)
    # R[:, row, f] for each free column f -> (B, n_f=n, m); map rows to their pivot columns
    coeff = R.transpose(1, 2)  # (B, n, m): coeff[b, f, row]
    pivot_onehot = torch.zeros(B, R.shape[1], n + 1, dtype=torch.bool, device=dev)
    pivot_onehot.scatter_(2, torch.where(pivots >= 0, pivots, n)[:, :, None], True)
    pivot_onehot = pivot_onehot[:, :, :n]  # (B, m, n)
    contribution = (coeff.to(torch.uint8) @ pivot_onehot.to(torch.uint8)) % 2  # (B, n, n)
    basis = (eye ^ contribution.bool()) & free[:, :, None] & real[:, None, :]
    return basis, free


def in_row_space(vectors: torch.Tensor, echelon: RowEchelon) -> torch.Tensor:
    """Whether each vector lies in the row space of the reduced matrix: ``vectors (B, V, n)``
    against ``echelon`` of a batch of ``B`` matrices; returns ``(B, V)`` bool."""
    R, pivots, _ = echelon
    v = vectors.clone()
    B = R.shape[0]
    batch = torch.arange(B, device=R.device)
    for row in range(R.shape[1]):
        p = pivots[:, row]
        active = p >= 0
        hit = v[batch, :, p.clamp(min=0)] & active[:, None]  # (B, V)
        v ^= hit[:, :, None] & R[:, row][:, None, :]
    return ~v.any(-1)
