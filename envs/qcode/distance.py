"""Distances of CSS and classical codes: a fast batched upper bound, and exact values.

**The estimate** (:func:`estimate_distance`) is the random-information-set method: permute the
qubits at random, row-reduce a basis of ``ker Hz`` in that column order (each basis vector then
has a single non-pivot qubit, so it is sparse where the permutation put "free" qubits), and keep
the lightest basis vector that is not in the row space of ``Hx`` — a nontrivial X-type logical
operator. The same with X and Z swapped gives the Z side; ``d`` is the smaller. Every vector
it keeps is a logical operator, so the result is an **upper bound** on the distance, and more
``trials`` tighten it; it is exact with high probability when the lightest logicals are found
by some permutation. All codes of a batch and all trials run as one batch of row reductions
(:mod:`rlsuite.envs.qcode.gf2`), on any device.

**Exact distances** come from the field's library: qldpc's Brouwer–Zimmermann search
(``qldpc.codes.CSSCode(hx, hz).get_distance_exact()``), from the ``[qcode]`` extra
(``pip install 'rlsuite[qcode]'``). :func:`classical_distance` enumerates the codewords of a
small classical code exactly (no extra needed).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from rlsuite.envs.qcode import gf2
from rlsuite.envs.qcode.css import CodeError, CSSCode

from rlsuite import keyed_random

INF = float("inf")


def _side(
    checks: torch.Tensor,
    stabilisers: torch.Tensor,
    num_qubits: torch.Tensor,
    trials: int,
    generator: torch.Generator | None,
    keys: torch.Tensor | None,
) -> torch.Tensor:
    """(B,) the lightest vector of ``ker checks`` outside ``rowspace(stabilisers)`` found in
    ``trials`` random information sets (inf when none is found: no logical on this side)."""
    B, _, n = checks.shape
    dev = checks.device
    # random order of the real qubits, padding columns last; keyed draws are indexed by
    # (key, trial, qubit), so they do not depend on the batch's padding
    if keys is None:
        draws = torch.rand(B, trials, n, generator=generator, device="cpu").to(dev)
    else:
        trial = torch.arange(trials, device=dev)
        draws = keyed_random.uniform(keyed_random.combine(keys.to(dev)[:, None], trial[None]), n)
    draws = torch.where(
        torch.arange(n, device=dev)[None, None, :] < num_qubits[:, None, None], draws, 2.0
    )
    order = torch.argsort(draws, dim=2).reshape(B * trials, n)
    rep = lambda t: t.repeat_interleave(trials, dim=0)  # noqa: E731
    basis, valid = gf2.kernel(rep(checks), rep(num_qubits), columns=order)
    echelon = gf2.row_reduce(rep(stabilisers))
    logical = valid & ~gf2.in_row_space(basis, echelon)
    weight = torch.where(logical, basis.sum(-1).double(), INF)  # (B*trials, n)
    return weight.reshape(B, trials * n).amin(1)


def estimate_distance(
    hx: Any,
    hz: Any,
    *,
    num_qubits: torch.Tensor | None = None,
    trials: int = 32,
    generator: torch.Generator | None = None,
    keys: torch.Tensor | None = None,
) -> torch.Tensor:
    """Upper bounds on the distance of a batch of CSS codes (see the module docstring).

    ``hx`` ``(B, mx, n)`` and ``hz`` ``(B, mz, n)`` 0/1 tensors (or single matrices), padded
    with zero rows and, beyond ``num_qubits[b]``, zero columns. Returns ``(B,)`` float64
    (``inf`` for a code with no logical qubits). The permutations come from ``generator``, or
    from ``keys`` (``(B,)`` int64, :mod:`rlsuite.keyed_random`) so that each code's estimate
    does not depend on the batch it is in."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    HX, HZ = gf2.as_batch(hx), gf2.as_batch(hz)
    if HX.shape[0] != HZ.shape[0] or HX.shape[2] != HZ.shape[2]:
        raise ValueError(f"hx {tuple(HX.shape)} and hz {tuple(HZ.shape)} do not match")
    # (B, mx, mz) overlaps, as CSSCode checks; float64 matmul: exact, and runs on CUDA
    clash = (HX.double() @ HZ.double().transpose(1, 2)) % 2
    if bool(clash.any()):
        b, i, j = (int(v) for v in clash.nonzero()[0])
        raise CodeError(
            f"the checks do not commute: in code {b} of the batch, X check {i} and Z check {j} "
            f"overlap on an odd number of qubits (Hx·Hzᵀ must be 0 mod 2; "
            f"{int(clash.sum())} pairs fail); the distance of such a pair is undefined"
        )
    if num_qubits is None:
        num_qubits = torch.full((HX.shape[0],), HX.shape[2], dtype=torch.int64, device=HX.device)
    z_keys = None if keys is None else keyed_random.combine(keys, 1)
    x_side = _side(HZ, HX, num_qubits, trials, generator, keys)  # X logicals: ker Hz \\ rowspace Hx
    z_side = _side(HX, HZ, num_qubits, trials, generator, z_keys)
    return torch.minimum(x_side, z_side)


def exact_distance(code: CSSCode) -> int:
    """The exact distance by qldpc's Brouwer–Zimmermann search (the ``[qcode]`` extra)."""
    try:
        from qldpc import codes as qldpc_codes
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "exact distances of quantum codes use qldpc: pip install 'rlsuite[qcode]'",
            name=err.name,
        ) from err
    if code.k == 0:
        raise ValueError(f"{code.name} encodes no logical qubit (k = 0): its distance is undefined")
    value = qldpc_codes.CSSCode(code.hx.astype(int), code.hz.astype(int)).get_distance_exact()
    return int(value)


def classical_distance(h: np.ndarray | torch.Tensor, max_dimension: int = 20) -> float:
    """Minimum weight of a nonzero vector of ``ker H`` by enumerating its ``2^k`` codewords
    (``inf`` when ``k = 0``); refuses codes of dimension above ``max_dimension``."""
    basis, valid = gf2.kernel(h)
    rows = basis[0][valid[0]].to(torch.uint8)
    k = rows.shape[0]
    if k == 0:
        return INF
    if k > max_dimension:
        raise ValueError(f"ker H has dimension {k} > max_dimension={max_dimension}")
    coefficients = torch.tensor(list(itertools.product((0, 1), repeat=k))[1:], dtype=torch.uint8)
    words = (coefficients.to(torch.int64) @ rows.to(torch.int64)) % 2
    return float(words.sum(1).min())
