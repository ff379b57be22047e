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


def _orders(
    num_qubits: torch.Tensor,
    n: int,
    trials: int,
    generator: torch.Generator | None,
    keys: torch.Tensor | None,
) -> torch.Tensor:
    """(B·trials, n): a random order of each code's real qubits per trial, padding columns
    last; keyed draws are indexed by (key, trial, qubit), so they do not depend on the batch's
    padding."""
    B, dev = num_qubits.shape[0], num_qubits.device
    if keys is None:
        draws = torch.rand(B, trials, n, generator=generator, device="cpu").to(dev)
    else:
        trial = torch.arange(trials, device=dev)
        draws = keyed_random.uniform(keyed_random.combine(keys.to(dev)[:, None], trial[None]), n)
    draws = torch.where(
        torch.arange(n, device=dev)[None, None, :] < num_qubits[:, None, None], draws, 2.0
    )
    return torch.argsort(draws, dim=2).reshape(B * trials, n)


#: how many of the lightest kernel vectors of each trial are tested for being logical in each
#: round (the next round only for the trials where none was)
_CANDIDATE_ROUNDS = (32, 256)


def _lightest_logicals(
    kernels: gf2.RowEchelon, num_qubits: torch.Tensor, stabilisers: gf2.RowEchelon
) -> torch.Tensor:
    """(K,) the least weight of a basis vector of ``ker`` (the :func:`gf2.kernel` basis of each
    echelon of ``kernels``) outside the row space of ``stabilisers`` (inf when none is). The
    vectors are built and tested lightest first, in rounds of ``_CANDIDATE_ROUNDS`` and then
    all, each round only for the trials where no earlier one found a logical: the first logical
    found is the lightest, since every vector not yet tested weighs at least as much."""
    weight = gf2.kernel_weights(kernels, num_qubits)  # (K, n), inf where no basis vector
    best = torch.full((weight.shape[0],), INF, dtype=torch.float64, device=weight.device)
    todo = torch.arange(weight.shape[0], device=weight.device)
    for size in (*_CANDIDATE_ROUNDS, weight.shape[1]):
        size = min(size, weight.shape[1])
        light, picked = torch.topk(weight[todo], size, dim=1, largest=False, sorted=True)
        chosen = gf2.kernel_vectors(gf2.RowEchelon(*(t[todo] for t in kernels)), picked)
        echelon = gf2.RowEchelon(*(t[todo] for t in stabilisers))
        logical = ~gf2.in_row_space(chosen, echelon) & torch.isfinite(light)
        best[todo] = torch.where(logical, light, INF).amin(1)
        # trials with no logical yet and vectors left to test
        todo = todo[~logical.any(1) & torch.isfinite(light[:, -1])]
        if not len(todo) or size == weight.shape[1]:
            break
    return best


def estimate_distance(
    hx: Any,
    hz: Any,
    *,
    num_qubits: torch.Tensor | None = None,
    trials: int = 32,
    generator: torch.Generator | None = None,
    keys: torch.Tensor | None = None,
    check: bool = True,
) -> torch.Tensor:
    """Upper bounds on the distance of a batch of CSS codes (see the module docstring).

    ``hx`` ``(B, mx, n)`` and ``hz`` ``(B, mz, n)`` 0/1 tensors (or single matrices), padded
    with zero rows and, beyond ``num_qubits[b]``, zero columns. Returns ``(B,)`` float64
    (``inf`` for a code with no logical qubits). The permutations come from ``generator``, or
    from ``keys`` (``(B,)`` int64, :mod:`rlsuite.keyed_random`) so that each code's estimate
    does not depend on the batch it is in.

    One batched row reduction serves both sides: ``Hz`` and ``Hx`` in each trial's order (the
    kernels) and in the natural order (the row spaces the kernel vectors are tested against).
    ``check=False`` skips the commutation check (``Hx·Hzᵀ = 0``, a ``CodeError`` otherwise) for
    matrices known to commute, e.g. those of :class:`~rlsuite.envs.qcode.css.CSSCode` objects."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    HX, HZ = gf2.as_batch(hx), gf2.as_batch(hz)
    if HX.shape[0] != HZ.shape[0] or HX.shape[2] != HZ.shape[2]:
        raise ValueError(f"hx {tuple(HX.shape)} and hz {tuple(HZ.shape)} do not match")
    if check:
        # (B, mx, mz) overlaps, as CSSCode checks; float64 matmul: exact, and runs on CUDA
        clash = (HX.double() @ HZ.double().transpose(1, 2)) % 2
        if bool(clash.any()):
            b, i, j = (int(v) for v in clash.nonzero()[0])
            raise CodeError(
                f"the checks do not commute: in code {b} of the batch, X check {i} and Z check {j} "
                f"overlap on an odd number of qubits (Hx·Hzᵀ must be 0 mod 2; "
                f"{int(clash.sum())} pairs fail); the distance of such a pair is undefined"
            )
    B, _, n = HX.shape
    dev = HX.device
    if num_qubits is None:
        num_qubits = torch.full((B,), n, dtype=torch.int64, device=dev)
    num_qubits = num_qubits.to(dev)
    z_keys = None if keys is None else keyed_random.combine(keys, 1)
    # X logicals: ker Hz \ rowspace Hx; Z logicals: ker Hx \ rowspace Hz
    x_order = _orders(num_qubits, n, trials, generator, keys)
    z_order = _orders(num_qubits, n, trials, generator, z_keys)
    m = max(HX.shape[1], HZ.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, m - t.shape[1]))  # noqa: E731
    HX, HZ = pad(HX), pad(HZ)
    rep = lambda t: t.repeat_interleave(trials, dim=0)  # noqa: E731
    natural = torch.arange(n, device=dev).expand(2 * B, n)
    echelon = gf2.row_reduce(
        torch.cat([rep(HZ), rep(HX), HX, HZ]), torch.cat([x_order, z_order, natural])
    )
    K = B * trials
    kernels = gf2.RowEchelon(*(t[: 2 * K] for t in echelon))
    # the stabilisers of each kernel: Hx's echelon for the X side, Hz's for the Z side
    index = torch.arange(B, device=dev).repeat_interleave(trials)
    index = 2 * K + torch.cat([index, B + index])
    stabilisers = gf2.RowEchelon(*(t[index] for t in echelon))
    qubits = torch.cat([rep(num_qubits)] * 2)
    best = _lightest_logicals(kernels, qubits, stabilisers).reshape(2, B, trials).amin(2)
    return torch.minimum(best[0], best[1])


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
