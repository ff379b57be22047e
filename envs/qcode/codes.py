"""Named starting codes and code files: classical parity-check matrices and CSS constructions.

**Classical codes** are parity-check matrices ``H`` (``m × n`` ``uint8``, no all-zero rows): the
code is ``ker H``. :func:`hamming` (Hamming 1950), :func:`reed_muller` (Muller 1954, Reed
1954; MacWilliams & Sloane, *The Theory of Error-Correcting Codes*, ch. 13), :func:`repetition`
and :func:`random_regular_ldpc` (Gallager 1963; the configuration model of Richardson &
Urbanke, *Modern Coding Theory*, §3.3).

**Quantum codes** are :class:`~rlsuite.envs.qcode.css.CSSCode` pairs ``(Hx, Hz)``:
:func:`steane` (Steane 1996), :func:`toric` (Kitaev 2003), :func:`rotated_surface` (Bombín &
Martin-Delgado 2007; Horsman et al. 2012), :func:`hypergraph_product` (Tillich & Zémor, IEEE
Trans. Inf. Theory 60, 1193 (2014), arXiv:0903.0566) and :func:`bivariate_bicycle` (Bravyi,
Cross, Gambetta, Maslov, Rall & Yoder, "High-threshold and low-overhead fault-tolerant quantum
memory", Nature 627, 778 (2024), arXiv:2308.07915), with :func:`bb72` and :func:`gross`.
Where a construction fixes the parameters, ``code.info`` records them:
``info["known_distance"]`` and ``info["known_parameters"] = (n, k, d)``.

:func:`named_code` builds a code from a short name (``"toric:5"``, ``"hgp:hamming:3"``, …; see
:data:`NAMED_CODES`); every code built here is named so that ``named_code(code.name)`` rebuilds
it.

**Files**: :func:`load_code` reads ``.npz`` (arrays ``hx``, ``hz``, optional ``name``; written by
:func:`save_code`) and MacKay's alist format (:func:`read_alist`, :func:`write_alist`; see
https://www.inference.org.uk/mackay/codes/alist.html). Everything is validated on load, and
errors name the file, the line and what is wrong.

Nothing here computes distances. Exact distances of quantum codes use qldpc's
Brouwer–Zimmermann search from the ``[qcode]`` extra (``pip install 'rlsuite[qcode]'``; see
:mod:`rlsuite.envs.qcode.distance`); this module does not import qldpc.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rlsuite.envs.qcode import gf2
from rlsuite.envs.qcode.css import CodeError, CSSCode

__all__ = [
    "NAMED_CODES",
    "bb72",
    "bivariate_bicycle",
    "gross",
    "hamming",
    "hypergraph_product",
    "load_code",
    "named_code",
    "random_regular_ldpc",
    "read_alist",
    "reed_muller",
    "repetition",
    "rotated_surface",
    "save_code",
    "steane",
    "toric",
    "write_alist",
]

PathLike = str | os.PathLike[str]

NAMED_CODES: tuple[str, ...] = (
    "steane",
    "toric:3",
    "toric:4",
    "surface:3",
    "surface:5",
    "hgp:hamming:3",
    "hgp:rm:1:3",
    "hgp:repetition:3",
    "hgp:ldpc:12:3:4:0",
    "bb72",
    "gross",
)
"""Example names accepted by :func:`named_code`."""

_NAME_FORMS = (
    "steane",
    "toric:L",
    "surface:d",
    "hgp:hamming:r",
    "hgp:rm:r:m",
    "hgp:repetition:n",
    "hgp:ldpc:n:dv:dc:seed",
    "bb72",
    "gross",
)


# --------------------------------------------------------------------------- helpers


def _integer(value: Any, what: str, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``, or a CodeError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CodeError(f"{what} must be an integer ≥ {minimum}, got {value!r}")
    if value < minimum:
        raise CodeError(f"{what} must be an integer ≥ {minimum}, got {value}")
    return int(value)


def _binary_matrix(matrix: Any, what: str) -> np.ndarray:
    """``matrix`` as a 2-D ``uint8`` 0/1 array, or a CodeError naming the first bad entry."""
    raw = np.asarray(matrix)
    if raw.ndim != 2:
        raise CodeError(f"{what} must be a 2-D matrix, got shape {raw.shape}")
    bad = ~np.isin(raw, (0, 1))
    if raw.size and bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CodeError(f"{what} must be binary (0/1); entry {where} is {raw[where].item()!r}")
    return np.ascontiguousarray(raw, dtype=np.uint8)


def _known(code: CSSCode, name: str, distance: int | None, **info: Any) -> CSSCode:
    """``code`` renamed, with where it came from and (if known) ``[[n, k, d]]`` in ``info``."""
    extra: dict[str, Any] = dict(info)
    if distance is not None:
        extra["known_distance"] = int(distance)
        extra["known_parameters"] = (code.n, code.k, int(distance))
    return dataclasses.replace(code, name=name, info={**code.info, **extra})


def _classical_k(h: np.ndarray) -> int:
    return int(h.shape[1]) - int(gf2.rank(h))


# --------------------------------------------------------------------------- classical codes


def hamming(r: int) -> np.ndarray:
    """Parity-check matrix of the ``[2^r − 1, 2^r − 1 − r, 3]`` Hamming code, ``r ≥ 2``.

    Column ``j`` (0-based) is the binary expansion of ``j + 1`` (least significant bit in row
    0), so the columns are all nonzero ``r``-bit vectors, each once: no two columns are equal
    (distance ≥ 3) and some three sum to zero (distance exactly 3). The rows are independent,
    so the transpose code is trivial.
    """
    r = _integer(r, "Hamming r", 2)
    columns = np.arange(1, 2**r)
    return ((columns[None, :] >> np.arange(r)[:, None]) & 1).astype(np.uint8)


def _rm_generator(order: int, m: int) -> np.ndarray:
    """Generator of RM(order, m): monomials of degree ≤ ``order`` in ``x_0 … x_{m−1}``
    evaluated at the ``2^m`` points of ``F_2^m`` (point ``p`` has ``x_t`` = bit ``t`` of ``p``),
    by degree then lexicographically."""
    bits = (np.arange(2**m)[None, :] >> np.arange(m)[:, None]) & 1  # (m, 2^m)
    rows = [
        np.prod(bits[list(subset)], axis=0) if subset else np.ones(2**m, dtype=np.int64)
        for degree in range(order + 1)
        for subset in itertools.combinations(range(m), degree)
    ]
    return np.array(rows, dtype=np.uint8)


def reed_muller(r: int, m: int) -> np.ndarray:
    """Parity-check matrix of the Reed–Muller code RM(r, m), ``0 ≤ r ≤ m − 1``.

    RM(r, m) has length ``2^m``, dimension ``Σ_{i ≤ r} C(m, i)`` and distance ``2^{m−r}``; its
    dual is RM(m − r − 1, m) (MacWilliams & Sloane, ch. 13, Thm. 4), so the parity-check matrix
    returned is the *generator* of RM(m − r − 1, m): the evaluations of all monomials of degree
    ≤ ``m − r − 1``, which are independent (full row rank). RM(1, 3) is the self-dual
    ``[8, 4, 4]`` extended Hamming code; RM(m − 1, m) is the even-weight code (one all-ones
    check). RM(m, m) is all of ``F_2^{2^m}`` and has no checks, so ``r = m`` is refused.
    """
    m = _integer(m, "Reed–Muller m", 1)
    r = _integer(r, "Reed–Muller r", 0)
    if r > m - 1:
        raise CodeError(
            f"Reed–Muller r must be in 0..m−1 = 0..{m - 1} (RM(m, m) has no checks), got r={r}"
        )
    return _rm_generator(m - r - 1, m)


def repetition(n: int, cyclic: bool = False) -> np.ndarray:
    """Parity-check matrix of the ``[n, 1, n]`` repetition code, ``n ≥ 2``.

    Rows are the ``n − 1`` adjacent-pair checks ``x_i + x_{i+1}`` (full rank); ``cyclic=True``
    adds the wrap-around check ``x_{n−1} + x_0`` (``n`` rows, rank ``n − 1``: the transpose code
    is then the repetition code too). The hypergraph product of the open chain with itself is
    the planar surface code; of the cyclic one, the toric code.
    """
    n = _integer(n, "repetition length n", 2)
    rows = n if cyclic else n - 1
    h = np.zeros((rows, n), dtype=np.uint8)
    i = np.arange(rows)
    h[i, i] = 1
    h[i, (i + 1) % n] = 1  # for n = 2, cyclic, both rows are x_0 + x_1
    return h


def random_regular_ldpc(n: int, dv: int, dc: int, seed: int) -> np.ndarray:
    """Parity-check matrix of a random ``(dv, dc)``-regular Gallager LDPC code.

    The Tanner graph has ``n`` variable nodes of degree ``dv`` and ``m = n·dv/dc`` check nodes
    of degree ``dc`` (``n·dv`` must be divisible by ``dc``). It is drawn by the configuration
    model: the ``n·dv`` variable sockets are matched to a random permutation of the ``m·dc``
    check sockets (``numpy.random.default_rng(seed)``, so the result is a deterministic
    function of the arguments). Repeated edges — which over GF(2) would cancel or merge and
    break regularity — are then removed by edge swaps: a repeated edge ``(v, c)`` and a random
    edge ``(v', c')`` with ``v'`` not on ``c`` and ``v`` not on ``c'`` become ``(v, c')`` and
    ``(v', c)``; each swap lowers the number of repeated edges, and degrees never change. If
    some repeated edge has no such partner the matching is redrawn (up to 100 times).

    A simple (dv, dc)-regular bipartite graph exists exactly when ``dc ≤ n`` (equivalently
    ``dv ≤ m``): a check cannot meet ``dc`` distinct variables otherwise. That case, and
    failing all redraws (never seen: over ``n ≤ 24``, ``dv ≤ 6``, every ``dc ≤ n`` and ten
    seeds each, at most four draws were needed), raise :class:`CodeError`; the matrix
    returned is always exactly regular, with no repeated edge. Its rows need not be
    independent: the sum of all rows is ``dv mod 2`` in every column, so for even ``dv`` the
    rows are dependent and the transpose code is nontrivial.
    """
    n = _integer(n, "LDPC length n", 1)
    dv = _integer(dv, "LDPC variable degree dv", 1)
    dc = _integer(dc, "LDPC check degree dc", 1)
    seed = _integer(seed, "LDPC seed", 0)
    if (n * dv) % dc:
        raise CodeError(
            f"a (dv={dv}, dc={dc})-regular code on n={n} bits needs n·dv/dc checks, and "
            f"n·dv = {n * dv} is not divisible by dc = {dc}"
        )
    m = n * dv // dc
    if dc > n:
        raise CodeError(
            f"no (dv={dv}, dc={dc})-regular Tanner graph without repeated edges exists on n={n} "
            f"bits: a check of degree dc needs dc ≤ n distinct bits"
        )
    rng = np.random.default_rng(seed)
    var = np.repeat(np.arange(n), dv)
    for _ in range(100):
        chk = rng.permutation(np.repeat(np.arange(m), dc))
        if _repair_multi_edges(var, chk, n, m, rng):
            h = np.zeros((m, n), dtype=np.uint8)
            h[chk, var] = 1
            return h
    raise CodeError(  # pragma: no cover - not reached for dc ≤ n in practice
        f"could not draw a (dv={dv}, dc={dc})-regular Tanner graph on n={n} bits without "
        f"repeated edges in 100 attempts (seed={seed})"
    )


def _repair_multi_edges(
    var: np.ndarray, chk: np.ndarray, n: int, m: int, rng: np.random.Generator
) -> bool:
    """Swap check endpoints in place until no (variable, check) pair repeats; False if stuck."""
    count = np.zeros((n, m), dtype=np.int64)
    np.add.at(count, (var, chk), 1)
    while True:
        repeated = np.flatnonzero(count[var, chk] > 1)
        if repeated.size == 0:
            return True
        e = int(repeated[0])
        v, c = int(var[e]), int(chk[e])
        partners = np.flatnonzero((count[var, c] == 0) & (count[v, chk] == 0))
        if partners.size == 0:
            return False
        f = int(rng.choice(partners))
        w, d = int(var[f]), int(chk[f])
        count[v, c] -= 1
        count[w, d] -= 1
        count[v, d] += 1
        count[w, c] += 1
        chk[e], chk[f] = d, c


# --------------------------------------------------------------------------- quantum codes


def hypergraph_product(h1: np.ndarray, h2: np.ndarray, *, name: str = "hgp") -> CSSCode:
    """Tillich–Zémor hypergraph product of classical parity-check matrices ``h1``, ``h2``.

    With ``H1`` (``m1 × n1``) and ``H2`` (``m2 × n2``), the qubits are ``n1·n2`` "bit × bit"
    qubits followed by ``m1·m2`` "check × check" qubits, and

    ``Hx = [H1 ⊗ I_{n2} | I_{m1} ⊗ H2ᵀ]`` (``m1·n2`` rows),
    ``Hz = [I_{n1} ⊗ H2 | H1ᵀ ⊗ I_{m2}]`` (``n1·m2`` rows),

    so ``Hx·Hzᵀ = H1 ⊗ H2ᵀ + H1 ⊗ H2ᵀ = 0``. It encodes ``k = k1·k2 + k1ᵀ·k2ᵀ`` qubits
    (``kᵢ = dim ker Hᵢ``, ``kᵢᵀ = dim ker Hᵢᵀ``) with distance ``min(d1, d2, d1ᵀ, d2ᵀ)``, a
    trivial code counting as ∞ (Tillich & Zémor 2014, Thm. 9). An X check ``(i, j)`` has weight
    ``|row i of H1| + |column j of H2|``; so the checks stay sparse when the inputs are LDPC.
    ``info`` records ``k1, k2, k1ᵀ, k2ᵀ``.
    """
    a = _binary_matrix(h1, "h1")
    b = _binary_matrix(h2, "h2")
    (m1, n1), (m2, n2) = a.shape, b.shape
    if min(m1, n1, m2, n2) == 0:
        raise CodeError(
            f"hypergraph product needs non-empty matrices, got h1 {a.shape} and h2 {b.shape}"
        )
    hx = np.hstack(
        [np.kron(a, np.eye(n2, dtype=np.uint8)), np.kron(np.eye(m1, dtype=np.uint8), b.T)]
    )
    hz = np.hstack(
        [np.kron(np.eye(n1, dtype=np.uint8), b), np.kron(a.T, np.eye(m2, dtype=np.uint8))]
    )
    info = {
        "construction": "hypergraph product (Tillich–Zémor 2014)",
        "classical_k": (_classical_k(a), _classical_k(b)),
        "classical_k_transpose": (_classical_k(a.T), _classical_k(b.T)),
    }
    return CSSCode(hx, hz, name=name, info=info)


def steane() -> CSSCode:
    """Steane's ``[[7, 1, 3]]`` code (Steane, Phys. Rev. Lett. 77, 793 (1996)): ``Hx = Hz`` = the
    Hamming(3) parity-check matrix, whose code contains its dual. Checks have weight 4."""
    h = hamming(3)
    code = CSSCode(h, h.copy(), info={"construction": "Steane: CSS(Hamming(3), Hamming(3))"})
    return _known(code, "steane", 3)


def toric(L: int) -> CSSCode:
    """Kitaev's toric code ``[[2L², 2, L]]`` on an ``L × L`` torus, ``L ≥ 2`` (unrotated).

    Qubits sit on the ``2L²`` edges, X checks on the ``L²`` vertices (star operators) and Z
    checks on the ``L²`` faces (plaquettes); every check has weight 4 and every qubit is in two
    checks of each type. Built as the hypergraph product of the cyclic repetition code with
    itself (Tillich & Zémor 2014): X check ``(i, j)`` (check ``i`` of the first factor, bit
    ``j`` of the second) is the star of vertex ``(i, j)``; bit × bit qubit ``(i, j)`` is the edge
    from vertex ``(i − 1, j)`` to ``(i, j)`` and check × check qubit ``(a, b)`` the edge from
    ``(a, b)`` to ``(a, b + 1)`` (indices mod ``L``), so the two blocks are the two edge
    orientations; Z check ``(i, j)`` (bit ``i``, check ``j``) is a face.
    """
    L = _integer(L, "toric size L", 2)
    h = repetition(L, cyclic=True)
    code = hypergraph_product(h, h)
    return _known(code, f"toric:{L}", L, construction="toric code (Kitaev 2003) as HGP(C_L, C_L)")


def rotated_surface(d: int) -> CSSCode:
    """The rotated surface code ``[[d², 1, d]]`` for odd ``d ≥ 3`` (Horsman, Fowler, Devitt &
    Van Meter, New J. Phys. 14, 123011 (2012); Tomita & Svore, PRA 90, 062320 (2014)).

    Data qubits form a ``d × d`` grid (qubit ``d·i + j`` at row ``i``, column ``j``). Face
    ``(a, b)``, ``−1 ≤ a, b ≤ d − 1``, covers the grid points among ``(a, b), (a+1, b), (a, b+1),
    (a+1, b+1)``; faces with ``a + b`` even are X checks, odd are Z checks. All ``(d − 1)²``
    interior faces are used (weight 4); on the top and bottom boundaries only the X faces, on the
    left and right only the Z faces (weight 2), ``(d − 1)/2`` per side: ``(d² − 1)/2`` checks of
    each type.
    """
    d = _integer(d, "surface distance d", 3)
    if d % 2 == 0:
        raise CodeError(f"rotated surface code distance d must be odd (3, 5, 7, …), got {d}")
    rows: dict[str, list[np.ndarray]] = {"x": [], "z": []}
    for a in range(-1, d):
        for b in range(-1, d):
            kind = "x" if (a + b) % 2 == 0 else "z"
            top_bottom = a in (-1, d - 1)
            left_right = b in (-1, d - 1)
            if top_bottom and left_right:
                continue  # corners touch a single qubit
            if (top_bottom and kind != "x") or (left_right and kind != "z"):
                continue
            row = np.zeros(d * d, dtype=np.uint8)
            for i, j in ((a, b), (a + 1, b), (a, b + 1), (a + 1, b + 1)):
                if 0 <= i < d and 0 <= j < d:
                    row[d * i + j] = 1
            rows[kind].append(row)
    code = CSSCode(
        np.array(rows["x"]), np.array(rows["z"]), info={"construction": "rotated surface code"}
    )
    return _known(code, f"surface:{d}", d)


def _group_algebra_element(
    lx: int, my: int, terms: Sequence[tuple[int, int]], what: str
) -> np.ndarray:
    """The ``lm × lm`` matrix of ``Σ x^i y^j`` with ``x = S_l ⊗ I_m``, ``y = I_l ⊗ S_m``."""
    shift_l = np.roll(np.eye(lx, dtype=np.int64), 1, axis=1)
    shift_m = np.roll(np.eye(my, dtype=np.int64), 1, axis=1)
    total = np.zeros((lx * my, lx * my), dtype=np.int64)
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    if len(terms) == 0:
        raise CodeError(f"{what} needs at least one monomial x^i y^j, got none")
    for term in terms:
        if not (isinstance(term, (tuple, list)) and len(term) == 2):
            raise CodeError(f"{what} terms must be (i, j) exponent pairs for x^i y^j, got {term!r}")
        i, j = (_integer_any(e, f"{what} exponent") for e in term)
        key = (i % lx, j % my)
        if key in seen:
            raise CodeError(
                f"{what} repeats the monomial x^{key[0]} y^{key[1]} (terms {seen[key]} and "
                f"{(i, j)}, exponents mod l={lx}, m={my}); over GF(2) repeated terms cancel"
            )
        seen[key] = (i, j)
        total += np.kron(
            np.linalg.matrix_power(shift_l, key[0]), np.linalg.matrix_power(shift_m, key[1])
        )
    return (total % 2).astype(np.uint8)


def _integer_any(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CodeError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _polynomial(terms: Sequence[tuple[int, int]]) -> str:
    def monomial(i: int, j: int) -> str:
        parts = [f"x^{i}" if i > 1 else "x" * i, f"y^{j}" if j > 1 else "y" * j]
        return "".join(parts) or "1"

    return "+".join(monomial(int(i), int(j)) for i, j in terms)


def bivariate_bicycle(
    l: int,  # noqa: E741 - the paper's name for the order of x
    m: int,
    a_terms: Sequence[tuple[int, int]],
    b_terms: Sequence[tuple[int, int]],
    *,
    name: str | None = None,
) -> CSSCode:
    """Bivariate bicycle code of Bravyi et al. (Nature 627, 778 (2024)).

    ``x = S_l ⊗ I_m`` and ``y = I_l ⊗ S_m`` (``S_k`` the cyclic shift of ``Z_k``) generate the
    group algebra ``F_2[Z_l × Z_m]``; ``A = Σ_{(i, j) ∈ a_terms} x^i y^j`` and likewise ``B``
    are commuting ``lm × lm`` matrices. Then ``Hx = [A | B]`` and ``Hz = [Bᵀ | Aᵀ]`` on
    ``n = 2lm`` qubits commute because ``AB = BA``. With three terms each, every check has
    weight 6 and every qubit degree 3. Exponents are taken mod ``l`` and ``m`` (so negative
    ones are inverses); a monomial repeated within ``A`` or ``B`` is refused, since it would
    cancel.
    """
    lx = _integer(l, "bivariate bicycle l", 1)
    m = _integer(m, "bivariate bicycle m", 1)
    a = _group_algebra_element(lx, m, a_terms, "A")
    b = _group_algebra_element(lx, m, b_terms, "B")
    label = name or f"bb(l={lx},m={m},A={_polynomial(a_terms)},B={_polynomial(b_terms)})"
    info = {
        "construction": "bivariate bicycle (Bravyi et al. 2024)",
        "l": lx,
        "m": m,
        "a_terms": tuple(tuple(int(e) for e in t) for t in a_terms),
        "b_terms": tuple(tuple(int(e) for e in t) for t in b_terms),
    }
    return CSSCode(np.hstack([a, b]), np.hstack([b.T, a.T]), name=label, info=info)


_BB_A = ((3, 0), (0, 1), (0, 2))  # A = x³ + y + y²
_BB_B = ((0, 3), (1, 0), (2, 0))  # B = y³ + x + x²


def bb72() -> CSSCode:
    """The ``[[72, 12, 6]]`` bivariate bicycle code: ``l = m = 6``, ``A = x³ + y + y²``,
    ``B = y³ + x + x²`` (Bravyi et al. 2024, Table 3)."""
    return _known(bivariate_bicycle(6, 6, _BB_A, _BB_B), "bb72", 6)


def gross() -> CSSCode:
    """The ``[[144, 12, 12]]`` "gross" bivariate bicycle code: ``l = 12``, ``m = 6``,
    ``A = x³ + y + y²``, ``B = y³ + x + x²`` (Bravyi et al. 2024)."""
    return _known(bivariate_bicycle(12, 6, _BB_A, _BB_B), "gross", 12)


# --------------------------------------------------------------------------- names


def named_code(name: str) -> CSSCode:
    """Build a code from its name (case-insensitive); the result carries the canonical name.

    Forms: ``steane``; ``toric:L``; ``surface:d`` (rotated, odd d); ``hgp:hamming:r``
    (HGP(H, H) of Hamming(r): ``[[(2^r−1)² + r², (2^r−1−r)², 3]]``); ``hgp:rm:r:m`` (HGP of the
    RM(r, m) parity-check matrix with itself, distance ``2^{m−r}``); ``hgp:repetition:n`` (the
    open chain: the planar surface code ``[[n² + (n−1)², 1, n]]``); ``hgp:ldpc:n:dv:dc:seed``
    (HGP of :func:`random_regular_ldpc`, distance unknown); ``bb72``; ``gross``.

    For the ``hgp:*`` forms other than ``ldpc`` the classical matrix has full row rank, so the
    transpose code is trivial and the product's distance is the classical distance
    (Tillich & Zémor 2014, Thm. 9); that is stored as ``info["known_distance"]``.
    """
    if not isinstance(name, str):
        raise CodeError(f"a code name must be a string, got {name!r}")
    key = name.strip().lower()
    parts = key.split(":")
    head, args = parts[0], parts[1:]

    def ints(count: int, form: str) -> list[int]:
        if len(args) != count:
            raise CodeError(f"code name {name!r} must have the form {form!r}")
        try:
            return [int(a) for a in args]
        except ValueError:
            raise CodeError(
                f"code name {name!r}: the parameters of {form!r} must be integers"
            ) from None

    if head in ("steane", "bb72", "gross") and not args:
        return {"steane": steane, "bb72": bb72, "gross": gross}[head]()
    if head == "toric":
        (L,) = ints(1, "toric:L")
        return toric(L)
    if head == "surface":
        (d,) = ints(1, "surface:d")
        return rotated_surface(d)
    if head == "hgp" and args:
        family, args = args[0], args[1:]
        if family == "hamming":
            (r,) = ints(1, "hgp:hamming:r")
            h, distance, label = hamming(r), 3, f"hgp:hamming:{r}"
        elif family == "rm":
            r, m = ints(2, "hgp:rm:r:m")
            h, distance, label = reed_muller(r, m), 2 ** (m - r), f"hgp:rm:{r}:{m}"
        elif family == "repetition":
            (n,) = ints(1, "hgp:repetition:n")
            h, distance, label = repetition(n), n, f"hgp:repetition:{n}"
        elif family == "ldpc":
            n, dv, dc, seed = ints(4, "hgp:ldpc:n:dv:dc:seed")
            h, distance = random_regular_ldpc(n, dv, dc, seed), None
            label = f"hgp:ldpc:{n}:{dv}:{dc}:{seed}"
        else:
            raise CodeError(
                f"unknown hypergraph-product family {family!r} in {name!r}; known: hamming, "
                f"rm, repetition, ldpc"
            )
        return _known(hypergraph_product(h, h), label, distance)
    raise CodeError(f"unknown code name {name!r}; known forms: {', '.join(_NAME_FORMS)}")


# --------------------------------------------------------------------------- files


def read_alist(path: PathLike) -> np.ndarray:
    """Read a binary matrix in MacKay's alist format as an ``m × n`` ``uint8`` array.

    The format (https://www.inference.org.uk/mackay/codes/alist.html) is, line by line:
    ``n m`` (columns, then rows); the largest column weight and the largest row weight; the
    ``n`` column weights; the ``m`` row weights; then for each column the 1-based indices of
    its nonzero rows, and for each row the 1-based indices of its nonzero columns. Index lists
    may be padded with trailing zeros up to the largest weight. Blank lines are skipped.
    Every declared weight must match its list, indices must be in range and not repeat, and
    the row lists must describe the same matrix as the column lists; otherwise
    :class:`CodeError` names the file, the line and what is wrong.
    """
    where = str(path)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise CodeError(f"{where}: cannot read alist file: {error}") from error
    lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, tokens) for number, tokens in lines if tokens]
    position = 0

    def take(what: str) -> tuple[int, list[int]]:
        nonlocal position
        if position >= len(lines):
            last = lines[-1][0] if lines else 0
            raise CodeError(f"{where}: file ends after line {last}; expected {what}")
        number, tokens = lines[position]
        position += 1
        try:
            values = [int(t) for t in tokens]
        except ValueError:
            raise CodeError(
                f"{where}: line {number}: expected integers ({what}), got {' '.join(tokens)!r}"
            ) from None
        return number, values

    def counted(what: str, count: int) -> tuple[int, list[int]]:
        number, values = take(what)
        if len(values) != count:
            raise CodeError(
                f"{where}: line {number}: expected {count} values ({what}), got {len(values)}"
            )
        return number, values

    number, (n, m) = counted("the matrix size 'n m' (columns, then rows)", 2)
    if n < 1 or m < 1:
        raise CodeError(f"{where}: line {number}: size n={n}, m={m} must have n ≥ 1 and m ≥ 1")
    number, (max_col, max_row) = counted("the largest column and row weights", 2)
    col_line, col_weights = counted(f"the {n} column weights", n)
    row_line, row_weights = counted(f"the {m} row weights", m)
    for line, weights, biggest, kind, size in (
        (col_line, col_weights, max_col, "column", m),
        (row_line, row_weights, max_row, "row", n),
    ):
        for index, weight in enumerate(weights, 1):
            if not 0 <= weight <= min(biggest, size):
                raise CodeError(
                    f"{where}: line {line}: {kind} {index} has weight {weight}, outside 0..{min(biggest, size)} "
                    f"(the declared largest {kind} weight is {biggest}; there are {size} "
                    f"{'rows' if kind == 'column' else 'columns'})"
                )
    if sum(col_weights) != sum(row_weights):
        raise CodeError(
            f"{where}: lines {col_line}-{row_line}: column weights sum to {sum(col_weights)} but "
            f"row weights to {sum(row_weights)}; both count the ones of the matrix"
        )

    def entries(
        kind: str, count: int, weights: list[int], biggest: int, size: int
    ) -> tuple[list[list[int]], list[int]]:
        """The 0-based index lists of ``count`` columns (or rows), and their line numbers."""
        result, numbers = [], []
        for index in range(count):
            number, values = take(f"the index list of {kind} {index + 1}")
            weight = weights[index]
            nonzero = [v for v in values if v != 0]
            padding = values[len(nonzero) :]  # all zeros exactly when zeros only trail
            if len(nonzero) != weight or any(padding) or len(values) > max(biggest, 1):
                raise CodeError(
                    f"{where}: line {number}: {kind} {index + 1} is declared with weight {weight} "
                    f"but lists {' '.join(map(str, values))!r} (expected {weight} nonzero indices, "
                    f"then at most {max(biggest - weight, 0)} zeros of padding)"
                )
            if any(not 1 <= v <= size for v in nonzero):
                bad = next(v for v in nonzero if not 1 <= v <= size)
                raise CodeError(
                    f"{where}: line {number}: {kind} {index + 1} lists index {bad}, outside 1..{size}"
                )
            if len(set(nonzero)) != len(nonzero):
                raise CodeError(
                    f"{where}: line {number}: {kind} {index + 1} repeats an index: {nonzero}"
                )
            result.append([v - 1 for v in nonzero])
            numbers.append(number)
        return result, numbers

    columns, column_lines = entries("column", n, col_weights, max_col, m)
    rows, row_lines = entries("row", m, row_weights, max_row, n)
    if position < len(lines):
        raise CodeError(
            f"{where}: line {lines[position][0]}: unexpected content after the {m} row lists"
        )
    by_column = np.zeros((m, n), dtype=np.uint8)
    for j, column in enumerate(columns):
        by_column[column, j] = 1
    by_row = np.zeros((m, n), dtype=np.uint8)
    for i, row in enumerate(rows):
        by_row[i, row] = 1
    if (by_column != by_row).any():
        i, j = (int(v) for v in np.argwhere(by_column != by_row)[0])
        if by_row[i, j]:
            said = f"line {row_lines[i]}: row {i + 1} lists column {j + 1}"
            other = f"column {j + 1}'s list (line {column_lines[j]}) lacks row {i + 1}"
        else:
            said = f"line {column_lines[j]}: column {j + 1} lists row {i + 1}"
            other = f"row {i + 1}'s list (line {row_lines[i]}) lacks column {j + 1}"
        raise CodeError(
            f"{where}: {said}, but {other}: the row lists must describe the same matrix as the "
            f"column lists"
        )
    return by_column


def write_alist(path: PathLike, h: np.ndarray) -> None:
    """Write the binary matrix ``h`` (``m × n``) in MacKay's alist format, index lists padded
    with zeros to the largest weight (see :func:`read_alist`)."""
    matrix = _binary_matrix(h, "alist matrix")
    m, n = matrix.shape
    if m == 0 or n == 0:
        raise CodeError(
            f"alist matrix must have at least one row and column, got shape {matrix.shape}"
        )
    col_weights = matrix.sum(0).astype(int)
    row_weights = matrix.sum(1).astype(int)
    max_col = int(col_weights.max(initial=0))
    max_row = int(row_weights.max(initial=0))

    def padded(indices: np.ndarray, width: int) -> str:
        values = [int(i) + 1 for i in indices] + [0] * (width - len(indices))
        return " ".join(map(str, values or [0]))

    out = [
        f"{n} {m}",
        f"{max_col} {max_row}",
        " ".join(map(str, col_weights)),
        " ".join(map(str, row_weights)),
    ]
    out += [padded(np.flatnonzero(matrix[:, j]), max_col) for j in range(n)]
    out += [padded(np.flatnonzero(matrix[i]), max_row) for i in range(m)]
    Path(path).write_text("\n".join(out) + "\n")


def save_code(code: CSSCode, path: PathLike) -> None:
    """Save ``code`` as ``.npz`` with arrays ``hx``, ``hz`` and ``name`` (``info`` is not
    stored). The path must end in ``.npz``."""
    if not isinstance(code, CSSCode):
        raise CodeError(f"save_code needs a CSSCode, got {type(code).__name__}")
    if Path(path).suffix.lower() != ".npz":
        raise CodeError(f"{path}: code files are saved as .npz; got suffix {Path(path).suffix!r}")
    np.savez_compressed(path, hx=code.hx, hz=code.hz, name=np.array(code.name))


def load_code(
    path: PathLike,
    hz: PathLike | None = None,
    *,
    hgp: bool = False,
    name: str | None = None,
) -> CSSCode:
    """Load a CSS code from a file (or two), validating everything.

    - ``load_code("code.npz")``: arrays ``hx`` and ``hz`` and an optional string ``name``
      (:func:`save_code` writes this).
    - ``load_code("hx.alist", hz="hz.alist")``: ``Hx`` and ``Hz`` from two alist files.
    - ``load_code("h.alist", hgp=True)``: one classical parity-check matrix ``H`` and the
      hypergraph product HGP(H, H) (:func:`hypergraph_product`).

    The name is ``name`` if given, else the one stored in the ``.npz``, else the file's stem
    (``hgp:<stem>`` for a product). Errors are :class:`CodeError` prefixed with the path: bad
    alist structure (line and declared weight), non-binary arrays, missing arrays, and
    non-commuting checks (the :class:`CSSCode` message).
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".npz":
        if hz is not None or hgp:
            raise CodeError(
                f"{path}: an .npz file holds both hx and hz; hz= and hgp= are for alist files"
            )
        hx_array, hz_array, stored = _read_npz(source)
        label = name or stored or source.stem
        return _validated(
            str(path), lambda: CSSCode(hx_array, hz_array, name=label, info={"file": str(path)})
        )
    if suffix != ".alist":
        raise CodeError(
            f"{path}: unknown code file type {source.suffix!r}; expected .npz or .alist"
        )
    if hz is not None and hgp:
        raise CodeError(
            f"{path}: pass either hz= (a second alist file for Hz) or hgp=True, not both"
        )
    if hz is None and not hgp:
        raise CodeError(
            f"{path}: an alist file holds one matrix; pass hz='…alist' for a CSS pair, or "
            f"hgp=True for the hypergraph product of this classical code with itself"
        )
    hx_matrix = read_alist(source)
    if hz is None:  # hgp=True
        label = name or f"hgp:{source.stem}"
        product = _validated(
            str(path), lambda: hypergraph_product(hx_matrix, hx_matrix, name=label)
        )
        return dataclasses.replace(product, info={**product.info, "file": str(path)})
    hz_matrix = read_alist(hz)
    label = name or source.stem
    return _validated(
        f"{path} + {hz}",
        lambda: CSSCode(hx_matrix, hz_matrix, name=label, info={"file": (str(path), str(hz))}),
    )


def _validated(where: str, build: Callable[[], CSSCode]) -> CSSCode:
    try:
        return build()
    except CodeError as error:
        raise CodeError(f"{where}: {error}") from error


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    if not zipfile.is_zipfile(path):  # numpy would try it as a pickle and advise allow_pickle
        raise CodeError(
            f"{path}: not an .npz archive (a zip of .npy arrays 'hx', 'hz'); rlsuite never "
            "loads pickled data"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        reason = "it holds pickled objects" if "pickle" in str(error) else str(error)
        raise CodeError(f"{path}: cannot read as .npz: {reason}") from error
    missing = [key for key in ("hx", "hz") if key not in arrays]
    if missing:
        raise CodeError(
            f"{path}: missing array(s) {', '.join(missing)}; a code file needs 'hx' and 'hz' "
            f"(found: {', '.join(sorted(arrays)) or 'none'})"
        )
    stored = None
    if "name" in arrays:
        raw = arrays["name"]
        if raw.ndim != 0 or raw.dtype.kind != "U":
            raise CodeError(
                f"{path}: 'name' must be a string (0-d str array), got {raw.dtype} {raw.shape}"
            )
        stored = str(raw)
    for key in ("hx", "hz"):
        if arrays[key].dtype.kind not in "biuf":
            raise CodeError(
                f"{path}: {key} must be a 0/1 numeric array, got dtype {arrays[key].dtype}"
            )
    return arrays["hx"], arrays["hz"], stored
