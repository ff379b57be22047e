"""Hypergraph-product codes from their classical codes, batched: [[n, k, d]] without building them.

Tillich & Zémor's hypergraph product HGP(H1, H2) of classical parity-check matrices
``H1 (m1 × n1)`` and ``H2 (m2 × n2)`` has ``Hx = [H1 ⊗ I_n2 | I_m1 ⊗ H2ᵀ]`` and
``Hz = [I_n1 ⊗ H2 | H1ᵀ ⊗ I_m2]``, so

* ``n = n1 n2 + m1 m2`` qubits;
* ``k = k1 k2 + k1ᵀ k2ᵀ``, with ``k_i = dim ker H_i`` and ``k_iᵀ = dim ker H_iᵀ``;
* ``d = min(d_X, d_Z)`` with ``d_X = min(d1 if k1 k2 > 0, d2ᵀ if k1ᵀ k2ᵀ > 0)`` and
  ``d_Z = min(d2 if k1 k2 > 0, d1ᵀ if k1ᵀ k2ᵀ > 0)``, where ``d_i`` (``d_iᵀ``) is the least
  weight of a nonzero vector of ``ker H_i`` (``ker H_iᵀ``) — checked against qldpc's
  ``HGPCode`` in the tests;
* X-check weight ``= rw(H1) + cw(H2)`` and Z-check weight ``= rw(H2) + cw(H1)`` (row and
  column weights), so row and column weights ≤ 3 give weight-6 checks; qubit degrees are the
  classical row and column weights.

Classical distances are exact by enumerating the ``2^k`` codewords of every code of the batch
at once while ``k ≤ max_dimension`` (16); beyond that they are random-information-set upper
bounds (:mod:`rlsuite.envs.qcode.distance`) and ``exact`` is False. Their random column orders
are keyed by the matrix itself (:func:`content_keys`, :mod:`rlsuite.keyed_random`), so the same
``H`` always gives the same parameters, whatever batch, env, seed or device it is in.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from rlsuite.envs.qcode import gf2

from rlsuite import keyed_random

INF = float("inf")


class ClassicalParameters(NamedTuple):
    dimension: torch.Tensor  # (B,) int64: k = dim ker H
    distance: torch.Tensor  # (B,) float64, inf when k = 0
    exact: torch.Tensor  # (B,) bool


def _codeword_table(k: int, device: torch.device) -> torch.Tensor:
    """(2^k, k) float32: every 0/1 combination of k basis vectors."""
    codes = torch.arange(1 << k, device=device)
    return ((codes[:, None] >> torch.arange(k, device=device)) & 1).float()


def content_keys(h: torch.Tensor) -> torch.Tensor:
    """(B,) int64: a hash of each matrix of the batch ``h`` (``(B, m, n)`` 0/1) — its shape and
    the coordinates of its ones — on ``h``'s device: equal matrices get equal keys."""
    H = gf2.as_batch(h).bool()
    m, n = H.shape[1:]
    dev = H.device
    cell = keyed_random.combine(  # one hash per coordinate (i, j)
        torch.arange(m, device=dev)[:, None], torch.arange(n, device=dev)[None, :]
    )
    ones = torch.where(H, cell, 0).sum((1, 2))  # wraps modulo 2**64: any order, any device
    return keyed_random.combine(ones, m, n)


def classical_parameters(
    h: torch.Tensor,
    *,
    max_dimension: int = 16,
    trials: int = 16,
) -> ClassicalParameters:
    """``k`` and ``d`` of a batch of classical codes ``ker H`` (``h``: ``(B, m, n)`` 0/1).

    Above ``max_dimension`` the distance is the lightest kernel vector over ``trials`` random
    information sets, whose column orders are keyed by ``H``'s content (:func:`content_keys`)."""
    H = gf2.as_batch(h)
    B, _, n = H.shape
    basis, valid = gf2.kernel(H)
    k = valid.sum(1)
    top = int(k.max()) if B else 0
    if top == 0:
        return ClassicalParameters(
            k,
            torch.full((B,), INF, dtype=torch.float64, device=H.device),
            torch.ones(B, dtype=torch.bool, device=H.device),
        )
    if top <= max_dimension:
        # the k basis rows first (stable sort keeps their order), padding rows (zero) after
        rows = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)[:, :top]
        compact = basis.gather(1, rows[:, :, None].expand(B, top, n)).float()
        words = torch.remainder(_codeword_table(top, H.device) @ compact, 2.0)  # (B, 2^K, n)
        weight = words.sum(-1)
        weight = torch.where(weight > 0, weight, INF).amin(1).double()
        return ClassicalParameters(k, weight, torch.ones(B, dtype=torch.bool, device=H.device))
    # too many codewords: the lightest kernel vector over random information sets (an upper bound)
    best = torch.full((B,), INF, dtype=torch.float64, device=H.device)
    keys = content_keys(H)
    for trial in range(trials):
        order = keyed_random.uniform(keyed_random.combine(keys, trial), n)
        b, v = gf2.kernel(H, columns=torch.argsort(order, dim=1))
        best = torch.minimum(best, torch.where(v, b.sum(-1).double(), INF).amin(1))
    return ClassicalParameters(k, best, torch.zeros(B, dtype=torch.bool, device=H.device))


class ProductParameters(NamedTuple):
    num_qubits: torch.Tensor  # (B,) int64
    dimension: torch.Tensor  # (B,) int64
    distance: torch.Tensor  # (B,) float64 (inf when k = 0)
    exact: torch.Tensor  # (B,) bool
    max_check_weight: torch.Tensor  # (B,) int64
    max_qubit_degree: torch.Tensor  # (B,) int64


def hgp_parameters(h1: torch.Tensor, h2: torch.Tensor, **kwargs: int) -> ProductParameters:
    """[[n, k, d]], the largest check weight and qubit degree of HGP(H1, H2) for a batch."""
    H1, H2 = gf2.as_batch(h1), gf2.as_batch(h2)
    m1, n1 = H1.shape[1:]
    m2, n2 = H2.shape[1:]
    same = H1.shape == H2.shape and bool(torch.equal(H1, H2))  # HGP(H, H): two codes, not four
    c1, c1t = classical_parameters(H1, **kwargs), classical_parameters(H1.transpose(1, 2), **kwargs)
    c2 = c1 if same else classical_parameters(H2, **kwargs)
    c2t = c1t if same else classical_parameters(H2.transpose(1, 2), **kwargs)
    direct = (c1.dimension * c2.dimension) > 0
    crossed = (c1t.dimension * c2t.dimension) > 0
    inf = torch.full_like(c1.distance, INF)
    d_x = torch.minimum(
        torch.where(direct, c1.distance, inf), torch.where(crossed, c2t.distance, inf)
    )
    d_z = torch.minimum(
        torch.where(direct, c2.distance, inf), torch.where(crossed, c1t.distance, inf)
    )
    rw1, cw1 = H1.sum(2).amax(1), H1.sum(1).amax(1)
    rw2, cw2 = H2.sum(2).amax(1), H2.sum(1).amax(1)
    return ProductParameters(
        num_qubits=torch.full_like(c1.dimension, n1 * n2 + m1 * m2),
        dimension=c1.dimension * c2.dimension + c1t.dimension * c2t.dimension,
        distance=torch.minimum(d_x, d_z),
        exact=c1.exact & c2.exact & c1t.exact & c2t.exact,
        max_check_weight=torch.maximum(rw1 + cw2, rw2 + cw1),
        # qubit (a, b) of the first block is in cw_a(H1) X and cw_b(H2) Z checks; qubit (i, j) of
        # the second in rw_j(H2) X and rw_i(H1) Z checks
        max_qubit_degree=torch.maximum(torch.maximum(cw1, cw2), torch.maximum(rw1, rw2)),
    )
