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


_BITS = 64


def pack(bits: torch.Tensor) -> torch.Tensor:
    """Pack the last dimension (0/1, length n) into int64 words, ``(..., ceil(n / 64))``: bit
    ``i`` of word ``w`` is entry ``64 w + i`` (bytes assembled little-endian, then viewed)."""
    n = bits.shape[-1]
    words = -(-n // _BITS)
    if bits.device.type == "cpu" and np.little_endian:  # the same words from numpy's packbits
        octets = np.packbits(bits.numpy().astype(bool), axis=-1, bitorder="little")
        octets = np.pad(octets, [(0, 0)] * (octets.ndim - 1) + [(0, words * 8 - octets.shape[-1])])
        return torch.from_numpy(np.ascontiguousarray(octets).view(np.int64))
    padded = torch.nn.functional.pad(bits.to(torch.uint8), (0, words * _BITS - n))
    weights = torch.tensor([1 << i for i in range(8)], dtype=torch.uint8, device=bits.device)
    octets = (padded.reshape(*bits.shape[:-1], words * 8, 8) * weights).sum(-1, dtype=torch.uint8)
    return octets.contiguous().view(torch.int64)


def unpack(words: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of :func:`pack`: bool ``(..., n)``."""
    if words.device.type == "cpu" and np.little_endian:
        octets = words.contiguous().numpy().view(np.uint8)
        bits = np.unpackbits(octets, axis=-1, count=n, bitorder="little")
        return torch.from_numpy(bits.view(bool))
    octets = words.contiguous().view(torch.uint8)
    shifts = torch.arange(8, dtype=torch.uint8, device=words.device)
    bits = (octets.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(*words.shape[:-1], words.shape[-1] * _BITS)[..., :n].bool()


def _bit(words: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """Bit ``column[b]`` of every row: ``words (B, R, W)`` -> ``(B, R)`` int64 0/1."""
    batch = torch.arange(words.shape[0], device=words.device)
    return (words[batch, :, column // _BITS] >> (column % _BITS)[:, None]) & 1


def row_reduce(
    matrix: torch.Tensor | np.ndarray, columns: torch.Tensor | None = None
) -> RowEchelon:
    """Reduced row echelon form of every matrix in the batch. ``columns`` (``(B, n)`` int64, a
    permutation per matrix) eliminates the columns in that order instead of left to right (the
    pivots are then in permuted positions; ``reduced`` keeps the original column order).
    Rows are packed into 64-bit words, so each elimination step XORs ``n / 64`` words a row."""
    H = as_batch(matrix)
    B, m, n = H.shape
    dev = H.device
    if m == 0 or n == 0:  # no rows (or columns): rank 0
        empty = torch.full((B, m), -1, dtype=torch.int64, device=dev)
        return RowEchelon(H.clone(), empty, torch.zeros(B, dtype=torch.int64, device=dev))
    R = pack(H)  # (B, m, W)
    if dev.type == "cpu":  # the same elimination in numpy: a fraction of torch's per-op cost
        return _row_reduce_numpy(R, columns, n)
    return _row_reduce_torch(R, columns, n)


def _row_reduce_torch(R: torch.Tensor, columns: torch.Tensor | None, n: int) -> RowEchelon:
    """:func:`row_reduce`'s loop in torch on the packed rows ``R`` (any device)."""
    B, m, _ = R.shape
    dev = R.device
    rows = torch.arange(m, device=dev)
    batch = torch.arange(B, device=dev)
    used = torch.zeros(B, m, dtype=torch.bool, device=dev)  # rows that already hold a pivot
    pivot_of_row = torch.full((B, m), -1, dtype=torch.int64, device=dev)
    order = torch.full((B, m), m, dtype=torch.int64, device=dev)  # when each row got its pivot
    for step in range(n):
        col = columns[:, step] if columns is not None else torch.full((B,), step, device=dev)
        bit = _bit(R, col) == 1  # (B, m)
        candidate = bit & ~used
        has = candidate.any(1)
        pivot_row = torch.argmax(candidate.to(torch.uint8), dim=1)  # first candidate row
        pivot_vec = R[batch, pivot_row]  # (B, W)
        hit = bit & (rows[None, :] != pivot_row[:, None]) & has[:, None]
        R ^= torch.where(hit[:, :, None], pivot_vec[:, None, :], 0)
        chosen = (rows[None, :] == pivot_row[:, None]) & has[:, None]
        used |= chosen
        pivot_of_row = torch.where(chosen, col[:, None], pivot_of_row)
        order = torch.where(chosen, step, order)
        if step % 8 == 7 and not bool(((R != 0).any(-1) & ~used).any()):
            break  # every nonzero row holds a pivot: the remaining columns change nothing
    # pivot rows first, in the order their pivots were found; then the zero rows
    arrangement = torch.argsort(order, dim=1, stable=True)
    R = R.gather(1, arrangement[:, :, None].expand_as(R))
    pivots = pivot_of_row.gather(1, arrangement)
    return RowEchelon(unpack(R, n), pivots, used.sum(1))


def _row_reduce_numpy(packed: torch.Tensor, columns: torch.Tensor | None, n: int) -> RowEchelon:
    """:func:`row_reduce`'s loop in numpy (CPU): the same pivots, rows and order, step for step;
    each step XORs the pivot row into only the rows that hold the pivot column's bit."""
    R = packed.numpy().view(np.uint64).copy()
    B, m, _ = R.shape
    cols = np.broadcast_to(np.arange(n), (B, n)) if columns is None else columns.cpu().numpy()
    word, shift = cols // _BITS, (cols % _BITS).astype(np.uint64)
    active = np.arange(B)  # matrices with a nonzero row still lacking a pivot
    used = np.zeros((B, m), dtype=bool)
    pivot_of_row = np.full((B, m), -1, dtype=np.int64)
    order = np.full((B, m), m, dtype=np.int64)
    one = np.uint64(1)
    free = np.ones((B, m), dtype=bool)  # ~used
    positions = np.arange(B)
    for step in range(n):
        a = active
        bit = ((R[a, :, word[a, step]] >> shift[a, step, None]) & one).astype(bool)  # (A, m)
        candidate = bit & free[a]
        has = candidate.any(1)
        pivot_row = candidate.argmax(1)
        bit[positions, pivot_row] = False
        bit &= has[:, None]
        i, r = np.nonzero(bit)
        if len(i):
            R[a[i], r] ^= R[a[i], pivot_row[i]]
        found, rows = a[has], pivot_row[has]
        used[found, rows] = True
        free[found, rows] = False
        pivot_of_row[found, rows] = cols[found, step]
        order[found, rows] = step
        if step % 8 == 7:  # drop the matrices whose every nonzero row holds a pivot
            active = a[((R[a] != 0).any(-1) & free[a]).any(1)]
            positions = np.arange(len(active))
            if not len(active):
                break  # the remaining columns change nothing
    arrangement = np.argsort(order, axis=1, kind="stable")
    R = np.take_along_axis(R, arrangement[:, :, None], axis=1)
    pivots = np.take_along_axis(pivot_of_row, arrangement, axis=1)
    reduced = unpack(torch.from_numpy(np.ascontiguousarray(R).view(np.int64)), n)
    return RowEchelon(
        reduced, torch.from_numpy(pivots), torch.from_numpy(used.sum(1).astype(np.int64))
    )


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
    return kernel_of_echelon(row_reduce(H, columns), num_columns)


def kernel_vectors(echelon: RowEchelon, free_columns: torch.Tensor) -> torch.Tensor:
    """The kernel basis vectors of :func:`kernel` for the given free columns only:
    ``free_columns`` ``(B, V)`` (each a free column of its matrix) -> ``(B, V, n)`` bool."""
    R, pivots, _ = echelon
    B, m, n = R.shape
    V = free_columns.shape[1]
    coeff = R.gather(2, free_columns[:, None, :].expand(B, m, V)).transpose(1, 2)  # (B, V, m)
    target = torch.where(pivots >= 0, pivots, n)[:, None, :].expand(B, V, m)
    vectors = torch.zeros(B, V, n + 1, dtype=torch.bool, device=R.device)
    vectors.scatter_(2, target, coeff & (pivots >= 0)[:, None, :])
    vectors.scatter_(2, free_columns[:, :, None], True)
    return vectors[:, :, :n]


def kernel_weights(echelon: RowEchelon, num_columns: torch.Tensor) -> torch.Tensor:
    """``(B, n)`` float64: the weight of :func:`kernel`'s basis vector of each free column
    (``1 +`` the pivot rows holding it), ``inf`` for pivot and padding columns."""
    R, pivots, _ = echelon
    B, _, n = R.shape
    is_pivot = torch.zeros(B, n + 1, dtype=torch.bool, device=R.device)
    is_pivot.scatter_(1, torch.where(pivots >= 0, pivots, n), True)
    real = torch.arange(n, device=R.device)[None, :] < num_columns[:, None]
    free = ~is_pivot[:, :n] & real
    if R.device.type == "cpu":  # numpy adds the rows as uint8 vectors, far faster
        rows = (pivots >= 0).numpy().astype(np.uint8)[:, :, None]
        counts = np.add.reduce(R.numpy().view(np.uint8) * rows, axis=1, dtype=np.int64)
        counts = torch.from_numpy(counts).double()
    else:
        counts = (R & (pivots >= 0)[:, :, None]).sum(1, dtype=torch.int64).double()
    return torch.where(free, 1.0 + counts, INF)


INF = float("inf")


def kernel_of_echelon(
    echelon: RowEchelon, num_columns: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`kernel` from a :func:`row_reduce` result (``num_columns`` ``(B,)`` real columns)."""
    R, pivots, _ = echelon
    B, m, n = R.shape
    dev = R.device
    is_pivot = torch.zeros(B, n + 1, dtype=torch.bool, device=dev)
    is_pivot.scatter_(1, torch.where(pivots >= 0, pivots, n), True)
    is_pivot = is_pivot[:, :n]
    real = torch.arange(n, device=dev)[None, :] < num_columns[:, None]
    free = ~is_pivot & real  # (B, n)
    # basis vector for free column f: e_f + Σ_rows with R[row, f] = 1 of e_{pivot(row)}:
    # contribution[b, f, pivot(row)] = R[b, row, f] (pivot columns are distinct; rows without
    # a pivot go to a dropped column n)
    target = torch.where(pivots >= 0, pivots, n)[:, None, :].expand(B, n, m)
    contribution = torch.zeros(B, n, n + 1, dtype=torch.bool, device=dev)
    contribution.scatter_(2, target, R.transpose(1, 2) & (pivots >= 0)[:, None, :])
    eye = torch.eye(n, dtype=torch.bool, device=dev).expand(B, n, n)
    basis = (eye ^ contribution[:, :, :n]) & free[:, :, None] & real[:, None, :]
    return basis, free


def in_row_space(vectors: torch.Tensor, echelon: RowEchelon) -> torch.Tensor:
    """Whether each vector lies in the row space of the reduced matrix: ``vectors (B, V, n)``
    against ``echelon`` of a batch of ``B`` matrices; returns ``(B, V)`` bool."""
    if vectors.device.type != "cpu":
        return _in_row_space_torch(vectors, echelon)
    R, pivots, _ = echelon
    v, rows = pack(vectors), pack(R)  # (B, V, W), (B, m, W)
    # the same reduction as in torch, in numpy, XORing only the rows it changes
    words = v.numpy().view(np.uint64).copy()
    basis, pivot = rows.numpy().view(np.uint64), pivots.numpy()
    batch, one = np.arange(words.shape[0]), np.uint64(1)
    for row in range(R.shape[1]):
        p = pivot[:, row]
        if not (p >= 0).any():
            continue  # no pivot in this row of any matrix
        q = np.maximum(p, 0)
        shift = (q % _BITS).astype(np.uint64)
        hit = ((words[batch, :, q // _BITS] >> shift[:, None]) & one).astype(bool)
        hit &= (p >= 0)[:, None]
        b, i = np.nonzero(hit)
        words[b, i] ^= basis[b, row]
    return torch.from_numpy(~(words != 0).any(-1))


def _in_row_space_torch(vectors: torch.Tensor, echelon: RowEchelon) -> torch.Tensor:
    """:func:`in_row_space` in torch (any device)."""
    R, pivots, _ = echelon
    v, rows = pack(vectors), pack(R)  # (B, V, W), (B, m, W)
    for row in range(R.shape[1]):
        p = pivots[:, row]
        hit = (_bit(v, p.clamp(min=0)) == 1) & (p >= 0)[:, None]  # (B, V)
        v ^= torch.where(hit[:, :, None], rows[:, row][:, None, :], 0)
    return ~(v != 0).any(-1)
