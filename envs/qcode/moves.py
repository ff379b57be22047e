"""Weight-reduction moves on CSS codes: copying, gauging, thickening with chosen heights, coning.

Each move is a pure function ``CSSCode -> CSSCode`` (numpy, deterministic) and a single local
step an agent can choose. The constructions are those of

* M. B. Hastings, "On quantum weight reduction", arXiv:2102.10030 (2021) — copying, gauging,
  thickening and choosing heights, coning;
* E. Sabo, L. G. Gunderman, B. Ide, M. Vasmer, G. Dauphinais, "Weight-reduced stabilizer codes
  with lower overhead", PRX Quantum 5, 040302 (2024), arXiv:2402.05228 — the finite-size
  versions and the order copying → gauging → thickening → coning.

Notation: the code has ``n`` qubits, ``mx`` X checks (rows of ``Hx``) and ``mz`` Z checks. For a
move on side ``s`` ("x" or "z") ``S`` is that side's matrix and ``O`` the other one; ``w(c)`` is
the weight of check ``c`` and ``deg_s(q)`` the number of ``s``-checks containing qubit ``q``. An
*X logical* is an X-type operator commuting with every Z check and not a product of X checks
(a vector of ``ker Hz \\ rowspace Hx``); ``d_X`` is the least weight of one, ``d_Z`` likewise,
and ``d = min(d_X, d_Z)``. Every move preserves ``k``; what it does to ``d`` is stated per move.

Moves on side "z" are the side-"x" constructions applied with the roles of ``Hx`` and ``Hz``
exchanged (the code's X/Z duality), so each is written once for a generic side matrix ``S``.

Indexing is kept stable where possible so an agent can track qubits and checks: copying and
gauging keep every old index and append the new qubits and checks at the end; thickening
reindexes everything in the layered layout given in :func:`thicken`.

Coning (:func:`cone_check`) appends its new qubits and checks at the end too; the coned check's
index goes to the first of the checks replacing it.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rlsuite.envs.qcode.css import CSSCode

Side = Literal["x", "z"]
MoveKind = Literal["copy", "gauge", "thicken", "cone"]

#: the named rules :func:`choose_heights` accepts
HEIGHT_RULES: tuple[str, ...] = ("spread", "round_robin", "zero", "cone")
#: the number of layers an agent may choose for a thickening move (the function takes any ≥ 2)
MIN_LAYERS, MAX_LAYERS = 2, 6
#: copying a qubit leaves its copies with side-degree ≤ 3 (one original check, ≤ 2 chain checks)
COPY_DEGREE = 3
#: gauging leaves weight-3 checks
GAUGE_WEIGHT = 3
#: the largest face (new check) :func:`cellulation` makes, and the target weight of the pipeline
CONE_WEIGHT = 6


@dataclass(frozen=True)
class Move:
    """One weight-reduction move. ``kind`` is "copy" (``index`` is a qubit), "gauge" or "cone"
    (``index`` is a check of type ``side``) or "thicken" (``layers`` and ``heights``; ``side``
    is the side whose qubit degree is reduced, "z" in Hastings' and Sabo et al.'s
    presentation). Build one with :meth:`copy`, :meth:`gauge`, :meth:`cone` or
    :meth:`thicken`."""

    kind: MoveKind
    side: Side
    index: int = 0
    layers: int = 0
    heights: str | tuple[int, ...] = "spread"

    @classmethod
    def copy(cls, qubit: int, side: Side = "x") -> Move:
        return cls("copy", side, index=operator.index(qubit))

    @classmethod
    def gauge(cls, check: int, side: Side = "x") -> Move:
        return cls("gauge", side, index=operator.index(check))

    @classmethod
    def cone(cls, check: int, side: Side = "z") -> Move:
        return cls("cone", side, index=operator.index(check))

    @classmethod
    def thicken(
        cls, layers: int, heights: str | Sequence[int] = "spread", side: Side = "z"
    ) -> Move:
        h = heights if isinstance(heights, str) else tuple(int(v) for v in heights)
        return cls("thicken", side, layers=operator.index(layers), heights=h)

    def __str__(self) -> str:
        if self.kind == "thicken":
            h = self.heights if isinstance(self.heights, str) else "custom"
            return f"thicken({self.side},l={self.layers},{h})"
        return f"{self.kind}({self.side},{self.index})"


# --------------------------------------------------------------------------------------------
# helpers


def _check_code(code: CSSCode) -> None:
    if not isinstance(code, CSSCode):
        raise ValueError(f"expected a CSSCode, got {type(code).__name__}")


def _check_side(side: str) -> None:
    if side not in ("x", "z"):
        raise ValueError(f"side must be 'x' or 'z', got {side!r}")


def _split(code: CSSCode, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(side matrix S, other matrix O) as int arrays."""
    _check_side(side)
    hx, hz = code.hx.astype(np.uint8), code.hz.astype(np.uint8)
    return (hx, hz) if side == "x" else (hz, hx)


def _join(s: np.ndarray, o: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    return (s, o) if side == "x" else (o, s)


def _derived(code: CSSCode, hx: np.ndarray, hz: np.ndarray, move: Move) -> CSSCode:
    history = [*code.info.get("moves", []), str(move)]
    info: dict[str, object] = {"parent": code.name, "moves": history}
    if "k" in code.info:  # every move preserves k
        info["k"] = code.info["k"]
    return CSSCode.trusted(hx, hz, name=f"{code.name}|{move}", info=info)


def _index(value: int, size: int, what: str) -> int:
    try:
        i = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if not 0 <= i < size:
        raise ValueError(f"{what} {i} is out of range: the code has {size} (0..{size - 1})")
    return i


def _vertical_degree(layers: int) -> np.ndarray:
    """Number of repetition edges at each of the ``layers`` vertices: 1 at the ends, 2 inside."""
    v = np.full(layers, 2, dtype=np.int64)
    v[0] = v[-1] = 1
    return v


# --------------------------------------------------------------------------------------------
# copying


def copy_qubit(code: CSSCode, qubit: int, side: Side = "x") -> CSSCode:
    """Copying (Hastings; Sabo et al., "copying"): lower one qubit's ``side``-degree.

    Let qubit ``q`` lie in the ``t = deg_s(q) ≥ 2`` checks ``c_0 < … < c_{t−1}`` of side ``s``.
    ``q`` is replaced by copies ``q_0 … q_{t−1}`` (``q_0`` keeps index ``q``, ``q_1 … q_{t−1}``
    are appended as columns ``n … n+t−2``) and

    * check ``c_i`` contains ``q_i`` instead of ``q`` (its weight is unchanged);
    * ``t − 1`` new ``s``-checks ``q_i + q_{i+1}`` (weight 2, a repetition chain) are appended;
    * every check of the other type that contained ``q`` now contains all copies
      ``q_0 … q_{t−1}`` (its weight grows by ``t − 1``), so overlaps keep their parity:
      ``S'·O'ᵀ = 0``.

    Sizes: ``n' = n + t − 1``, ``m_s' = m_s + t − 1``, the other side unchanged.
    Degrees: ``deg_s'(q_i) = 1 + [i > 0] + [i < t−1]`` (2 at the chain ends, 3 inside, so
    ≤ 3), ``deg_o'(q_i) = deg_o(q)``; all other qubits are unchanged.

    ``k`` is unchanged: summing the copies, ``φ(x)_q = Σ_i x_{q_i}``, maps the new row space of
    ``S'`` onto the old one with kernel the ``t − 1`` chain checks, and ``O'`` has the same
    rank as ``O``. Distance (for ``s = x``): X logicals project under ``φ`` onto X logicals of
    no larger weight and a least-weight one lifts by putting ``q``'s bit on ``q_0``, so
    ``d_X' = d_X``; Z logicals must be constant on the copies (the chain checks), so
    ``d_Z ≤ d_Z' ≤ d_Z + t − 1``. Copying never lowers the distance. (For ``s = z`` exchange
    X and Z.)
    """
    _check_code(code)
    s, o = _split(code, side)
    q = _index(qubit, code.n, "qubit")
    checks = np.flatnonzero(s[:, q])
    t = len(checks)
    if t < 2:
        raise ValueError(
            f"qubit {q} is in {t} {side.upper()} check(s); copying needs a qubit of "
            f"{side.upper()}-degree ≥ 2"
        )
    m, n = s.shape
    columns = np.array([q, *range(n, n + t - 1)])
    s_new = np.zeros((m + t - 1, n + t - 1), dtype=np.uint8)
    s_new[:m, :n] = s
    s_new[checks, q] = 0
    s_new[checks, columns] = 1
    chain = np.arange(t - 1)
    s_new[m + chain, columns[:-1]] = 1
    s_new[m + chain, columns[1:]] = 1
    o_new = np.concatenate([o, np.repeat(o[:, q : q + 1], t - 1, axis=1)], axis=1)
    return _derived(code, *_join(s_new, o_new, side), Move.copy(q, side))


# --------------------------------------------------------------------------------------------
# gauging


def gauge_check(
    code: CSSCode, check: int, side: Side = "x", order: Sequence[int] | None = None
) -> CSSCode:
    """Gauging (Hastings; Sabo et al., "gauging"): split one heavy check.

    A check ``c`` of side ``s`` with support ``v_0 … v_{w−1}`` (in increasing index, or in
    ``order``, a permutation of the support) and weight ``w ≥ 4`` is replaced by the ``w − 2``
    weight-3 checks of a chain through ``w − 3`` new qubits ``a_0 … a_{w−4}`` (columns
    ``n … n+w−4``)::

        C_0 = v_0 + v_1 + a_0,   C_j = a_{j−1} + v_{j+1} + a_j  (1 ≤ j ≤ w−4),
        C_{w−3} = a_{w−4} + v_{w−2} + v_{w−1},

    whose product is ``c`` (each ``a_j`` occurs twice). ``C_0`` keeps index ``c``; the others
    are appended. Each other-side check ``b`` is extended onto the new qubits by the
    prefix-parity rule: ``b ∋ a_j`` iff ``|b ∩ {v_0 … v_{j+1}}|`` is odd. Then ``b`` meets
    ``C_0`` in ``2·p_1``, ``C_j`` in ``p_j + [v_{j+1} ∈ b] + p_{j+1} ≡ 0`` and ``C_{w−3}`` in
    ``|b ∩ c| ≡ 0`` qubits (``p_j`` the prefix parity), so everything commutes.

    Sizes: ``n' = n + w − 3``, ``m_s' = m_s + w − 3``, the other side unchanged.
    Weights/degrees: the new checks have weight 3; each ``v_i`` lies in exactly one ``C_j``
    (its ``s``-degree is unchanged); ``deg_s'(a_j) = 2``; an other-side check grows by the
    number of odd prefix parities (≤ ``w − 3``) and ``deg_o'(a_j)`` is the number of other-side
    checks with odd prefix parity at ``j + 1``.

    ``k`` is unchanged: ``rank S' = rank S + w − 3`` (only the full product of the ``C_j``
    cancels the ``a``'s) and the new columns of ``O'`` are linear in the old ones. Distance
    (for ``s = x``): a Z logical of the new code restricts to a Z logical of the old one, so
    ``d_Z' ≥ d_Z``; but ``d_X`` can drop, since the pieces ``C_j`` are now stabilisers that can
    shorten X logicals — e.g. gauging a weight-4 check of the [[7,1,3]] Steane code gives an
    [[8,1,2]] code. (For ``s = z`` exchange X and Z.)
    """
    _check_code(code)
    s, o = _split(code, side)
    c = _index(check, s.shape[0], f"{side.upper()} check")
    support = np.flatnonzero(s[c])
    w = len(support)
    if w <= GAUGE_WEIGHT:
        raise ValueError(
            f"{side.upper()} check {c} has weight {w}; gauging needs weight ≥ {GAUGE_WEIGHT + 1}"
        )
    if order is not None:
        chosen = np.array([operator.index(v) for v in order], dtype=np.int64)
        if len(chosen) != w or set(chosen.tolist()) != set(support.tolist()):
            raise ValueError(
                f"order must be a permutation of check {c}'s support {support.tolist()}, "
                f"got {chosen.tolist()}"
            )
        support = chosen
    m, n = s.shape
    extra = w - 3
    s_new = np.zeros((m + extra, n + extra), dtype=np.uint8)
    s_new[:m, :n] = s
    s_new[c] = 0
    rows = [c, *range(m, m + extra)]
    a = n + np.arange(extra)
    # piece 0
    s_new[rows[0], support[:2]] = 1
    s_new[rows[0], a[0]] = 1
    for j in range(1, extra):
        s_new[rows[j], [a[j - 1], support[j + 1], a[j]]] = 1
    s_new[rows[-1], [a[-1], support[-2], support[-1]]] = 1
    prefix = np.cumsum(o[:, support], axis=1) % 2  # prefix[:, i] = parity of v_0..v_i
    o_new = np.concatenate([o, prefix[:, 1 : 1 + extra].astype(np.uint8)], axis=1)
    return _derived(code, *_join(s_new, o_new, side), Move.gauge(c, side))


# --------------------------------------------------------------------------------------------
# thickening and choosing heights


def _height_loads(b: np.ndarray, layers: int, heights: np.ndarray) -> np.ndarray:
    """``load[q, i] = |{c ∋ q : h(c) = i}|`` for the side matrix ``b``."""
    load = np.zeros((b.shape[1], layers), dtype=np.int64)
    rows, cols = np.nonzero(b)
    np.add.at(load, (cols, heights[rows]), 1)
    return load


def choose_heights(
    code: CSSCode, layers: int, rule: str | Sequence[int] = "spread", side: Side = "z"
) -> np.ndarray:
    """A layer ``h(c) ∈ {0 … layers−1}`` for every ``side`` check ``c`` (int64 array).

    ``rule`` is an explicit sequence (validated: one entry per check, each in range) or

    * ``"zero"`` — every check at layer 0: nothing is balanced, the layer-0 copy of each qubit
      keeps its full degree (``max deg' = max deg + 1``);
    * ``"round_robin"`` — ``h(c) = c mod layers``;
    * ``"spread"`` — greedy balancing: checks in decreasing weight (ties by index) each take
      the layer minimising, over their qubits, first the largest and then the total of the
      resulting degrees ``load(q, i) + 1 + v(i)`` (``v`` as in :func:`thicken`), ties to the
      lowest layer. Guarantee: its largest horizontal-qubit ``side``-degree is at most
      ``max_q deg_s(q) + 1``, the value of "zero" (layer 0 always offers ``≤ deg_s(q) + 1``
      to every qubit of the check being placed), and usually much less. No rule can keep every
      qubit at ``⌈deg_s(q)/l⌉`` checks per layer: the three Z checks of the Steane code
      pairwise share a qubit of Z-degree 2, so with two layers one such qubit has both its
      checks on one layer (``2 > ⌈2/2⌉``).
    """
    _check_code(code)
    _check_side(side)
    layers = _check_layers(layers)
    b = code.hx if side == "x" else code.hz
    m = b.shape[0]
    if not isinstance(rule, str):
        h = np.array([operator.index(v) for v in rule], dtype=np.int64)
        if h.shape != (m,):
            raise ValueError(
                f"heights must give one layer per {side.upper()} check ({m}), got {len(h)}"
            )
        if m and (h.min() < 0 or h.max() >= layers):
            bad = int(h[(h < 0) | (h >= layers)][0])
            raise ValueError(f"height {bad} is not a layer: allowed 0..{layers - 1}")
        return h
    if rule == "zero":
        return np.zeros(m, dtype=np.int64)
    if rule == "round_robin":
        return np.arange(m, dtype=np.int64) % layers
    if rule not in ("spread", "cone"):
        raise ValueError(f"unknown height rule {rule!r}; allowed: {', '.join(HEIGHT_RULES)}")
    if rule == "cone":
        return _cone_heights(code, layers, side)
    v = _vertical_degree(layers)
    load = np.zeros((b.shape[1], layers), dtype=np.int64)
    h = np.zeros(m, dtype=np.int64)
    weights = b.sum(1).astype(np.int64)
    for c in sorted(range(m), key=lambda r: (-weights[r], r)):
        support = np.flatnonzero(b[c])
        degrees = load[support] + 1 + v[None, :]  # (|c|, layers)
        key = degrees.max(0) * (degrees.sum() + 1) + degrees.sum(0)
        best = int(np.argmin(key))
        h[c] = best
        load[support, best] += 1
    return h


def _cone_heights(code: CSSCode, layers: int, side: Side) -> np.ndarray:
    """The "cone" rule of :func:`choose_heights`: greedy, checks in decreasing weight (ties by
    index), each to the layer minimising, then the sum, of the two largest values coning every
    ``side`` check after thickening would give: the other-side check weight
    ``w(x) + v(i) + |{c ∋ x : h(c) = i}|`` (each coned check adds one qubit to each check it
    meets) over the checks ``x`` meeting ``c``, and the degree ``load(q, i) + v(i)`` over the
    qubits of ``c``; ties to the lowest layer."""
    b, a = _split(code, side)
    v = _vertical_degree(layers)
    meets = (a.astype(np.int64) @ b.T.astype(np.int64)) > 0  # (ma, mb)
    wa = a.sum(1).astype(np.int64)
    cone_load = np.zeros((a.shape[0], layers), dtype=np.int64)
    load = np.zeros((b.shape[1], layers), dtype=np.int64)
    h = np.zeros(b.shape[0], dtype=np.int64)
    weights = b.sum(1).astype(np.int64)
    for c in sorted(range(b.shape[0]), key=lambda r: (-weights[r], r)):
        support, xs = np.flatnonzero(b[c]), np.flatnonzero(meets[:, c])
        degree = (load[support] + 1 + v[None, :]).max(0)
        weight = (wa[xs, None] + v[None, :] + cone_load[xs] + 1).max(0, initial=0)
        key = np.maximum(degree, weight) * (2 * (degree.max() + weight.max()) + 1)
        best = int(np.argmin(key + degree + weight))
        h[c] = best
        load[support, best] += 1
        cone_load[xs, best] += 1
    return h


def _check_layers(layers: int) -> int:
    try:
        layers = operator.index(layers)
    except TypeError:
        raise ValueError(f"layers must be an integer, got {layers!r}") from None
    if layers < MIN_LAYERS:
        raise ValueError(f"layers must be ≥ {MIN_LAYERS} (a repetition code), got {layers}")
    return layers


def thicken(
    code: CSSCode, layers: int, heights: str | Sequence[int] = "spread", side: Side = "z"
) -> CSSCode:
    """Thickening and choosing heights (Hastings; Sabo et al., "thickening and choosing heights").

    Written for ``side = "z"`` (lowering Z-degrees, as in the papers); ``side = "x"`` is the
    same with ``Hx`` and ``Hz`` exchanged. View the code as the chain complex
    ``C_Z --Hzᵀ--> Q --Hx--> C_X`` and take its product with the repetition complex
    ``B_1 --Rᵀ--> B_0`` of ``l = layers`` vertices and ``l − 1`` edges (``R`` is the
    ``(l−1)×l`` matrix with rows ``e_i + e_{i+1}``). The qubits are ``Q⊗B_0 ⊕ C_X⊗B_1``:
    a copy ``(q, i)`` of each qubit on every layer (column ``q·l + i``) and a vertical qubit
    ``(x, e)`` for each X check and edge (column ``n·l + x·(l−1) + e``). With ``I_a`` the
    ``a × a`` identity (right: each check's row index)::

        Hx' = [ Hx ⊗ I_l                    |  I_mx ⊗ Rᵀ     ]   X check (x, i): x·l + i
        Hz' = [ rows (c, h(c)) of Hz ⊗ I_l  |  0             ]   Z check c: c
              [ I_n ⊗ R                     |  Hxᵀ ⊗ I_{l−1} ]   Z check (q, e): mz + q·(l−1) + e

    ``Hx'·Hz'ᵀ = 0``: ``(Hx⊗I)(Hzᵀ⊗I) = HxHzᵀ⊗I = 0`` and ``Hx⊗Rᵀ + Hx⊗Rᵀ = 0``.

    *Choosing heights* keeps, of the ``l`` copies ``(c, i)`` of each Z check of the plain
    thickening, only the one at layer ``h(c)``. This changes the generating set but not the
    stabiliser group: ``(c, i) + (c, i+1)`` is the product of the vertical checks
    ``(q, e_i)``, ``q ∈ c`` (the boundary of the 3-cell ``c⊗e_i``). So the code is the plain
    thickening, ``Hx'·Hz'ᵀ = 0`` and ``k' = k`` (Künneth: ``H_1(A⊗B) = H_1(A)⊗H_0(B)``, and
    ``H_0`` of a connected repetition complex is one-dimensional) for every choice of heights,
    and no coning is needed for correctness. Distance (as in distance balancing, Evra–Kaufman–
    Zémor, arXiv:2004.07935, with the repetition code): a Z logical can sit on one layer,
    ``d_Z' = d_Z``; an X logical must be repeated on every layer, ``d_X' = l·d_X``.

    Sizes: ``n' = n·l + mx·(l−1)``, ``mx' = mx·l``, ``mz' = mz + n·(l−1)`` (for ``side = "x"``:
    ``n' = n·l + mz·(l−1)``, ``mx' = mx + n·(l−1)``, ``mz' = mz·l``).

    Weights and degrees (``v(i) = 1`` at the end layers ``0, l−1`` and 2 inside):

    * X check ``(x, i)``: ``w(x) + v(i)``; Z check ``c``: ``w(c)``; Z check ``(q, e)``:
      ``2 + deg_X(q)``;
    * ``deg_Z'(q, i) = |{c ∋ q : h(c) = i}| + v(i)`` — the move's purpose; ``deg_Z'(x, e) =
      w(x)``; ``deg_X'(q, i) = deg_X(q)``; ``deg_X'(x, e) = 2``.

    ``heights``: an array with one layer per Z check, or a rule of :func:`choose_heights`.
    """
    _check_code(code)
    _check_side(side)
    layers = _check_layers(layers)
    h = choose_heights(code, layers, heights, side)
    b, a = _split(code, side)  # b: side whose degree drops; a: the other ("X" above)
    n, ma, mb = code.n, a.shape[0], b.shape[0]
    eye_l = np.eye(layers, dtype=np.uint8)
    eye_e = np.eye(layers - 1, dtype=np.uint8)
    rep = np.zeros((layers - 1, layers), dtype=np.uint8)
    rep[np.arange(layers - 1), np.arange(layers - 1)] = 1
    rep[np.arange(layers - 1), np.arange(1, layers)] = 1
    a_new = np.concatenate([np.kron(a, eye_l), np.kron(np.eye(ma, dtype=np.uint8), rep.T)], 1)
    spread_b = np.kron(b, eye_l)[np.arange(mb) * layers + h]
    top = np.concatenate([spread_b, np.zeros((mb, ma * (layers - 1)), dtype=np.uint8)], 1)
    vertical = np.concatenate([np.kron(np.eye(n, dtype=np.uint8), rep), np.kron(a.T, eye_e)], 1)
    b_new = np.concatenate([top, vertical], 0)
    hx, hz = (a_new, b_new) if side == "z" else (b_new, a_new)
    return _derived(code, hx, hz, Move.thicken(layers, heights, side))


def thickened_degrees(
    code: CSSCode, layers: int, heights: str | Sequence[int] = "spread", side: Side = "z"
) -> np.ndarray:
    """The ``side``-degrees of the qubits :func:`thicken` would produce (same column order),
    from the formulas in its docstring, without building the code."""
    _check_code(code)
    layers = _check_layers(layers)
    h = choose_heights(code, layers, heights, side)
    b, a = _split(code, side)
    horizontal = _height_loads(b, layers, h) + _vertical_degree(layers)[None, :]
    vertical = np.repeat(a.sum(1).astype(np.int64), layers - 1)
    return np.concatenate([horizontal.reshape(-1), vertical])


# --------------------------------------------------------------------------------------------
# coning


@dataclass(frozen=True)
class Cellulation:
    """The 2-complex :func:`cone_check` glues onto one check ``c`` (positions, not code indices).

    ``vertices`` are the qubits of ``c`` (increasing); ``edges`` the other-side checks meeting
    ``c`` (increasing), edge ``e`` joining the two vertex positions ``ends[e]``; ``chords`` the
    added edges (pairs of vertex positions); ``faces`` lists each face as edge ids, ``0 … E−1``
    the check edges and ``E + j`` chord ``j``."""

    vertices: np.ndarray
    edges: np.ndarray
    ends: np.ndarray
    chords: tuple[tuple[int, int], ...]
    faces: tuple[tuple[int, ...], ...]

    @property
    def num_cycles(self) -> int:
        """``E − V + 1``, the cycle rank of the check graph (it is connected)."""
        return len(self.edges) - len(self.vertices) + 1


def _cone_graph(s: np.ndarray, o: np.ndarray, c: int, side: str) -> tuple[np.ndarray, ...]:
    """(support of check ``c``, other-side checks meeting it, their two positions in the
    support); raises ``ValueError`` if some other-side check meets ``c`` in more than 2
    qubits or the check graph is disconnected."""
    support = np.flatnonzero(s[c])
    sub = o[:, support]
    edges = np.flatnonzero(sub.any(1))
    overlap = sub[edges].sum(1)
    other = "Z" if side == "x" else "X"
    if (overlap != 2).any():
        bad = int(edges[np.flatnonzero(overlap != 2)[0]])
        raise ValueError(
            f"{other} check {bad} meets {side.upper()} check {c} in "
            f"{int(sub[bad].sum())} qubits; coning needs every overlap to be 0 or 2"
        )
    ends = np.nonzero(sub[edges])[1].reshape(-1, 2).astype(np.int64)
    # connectivity of the check graph (vertices: the support, edges: the meeting checks)
    root = list(range(len(support)))

    def find(v: int) -> int:
        while root[v] != v:
            root[v] = root[root[v]]
            v = root[v]
        return v

    for u, w in ends.tolist():
        root[find(u)] = find(w)
    parts = len({find(v) for v in range(len(support))})
    if parts != 1:
        raise ValueError(
            f"{side.upper()} check {c}: its qubits and the {other} checks meeting it form "
            f"{parts} connected pieces; coning needs one (each piece would be a separate "
            f"{side.upper()} operator commuting with every {other} check)"
        )
    return support, edges, ends


def _cycle_basis(num_vertices: int, ends: np.ndarray) -> list[int]:
    """A basis of the cycle space of a connected multigraph, as bitmasks over edges: the
    shortest independent cycles (ties to the smaller mask) among the fundamental cycles of a
    breadth-first tree from every vertex (Horton's candidate set; they include a minimum-weight
    cycle basis, J. D. Horton, SIAM J. Comput. 16, 358 (1987))."""
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(num_vertices)]
    for e, (u, w) in enumerate(ends.tolist()):
        adjacency[u].append((w, e))
        adjacency[w].append((u, e))
    candidates: set[int] = set()
    for r in range(num_vertices):
        path = [0] * num_vertices  # edges of the tree path from r
        seen = [False] * num_vertices
        seen[r] = True
        tree: set[int] = set()
        queue = deque([r])
        while queue:
            u = queue.popleft()
            for w, e in adjacency[u]:
                if not seen[w]:
                    seen[w] = True
                    tree.add(e)
                    path[w] = path[u] | (1 << e)
                    queue.append(w)
        for e, (u, w) in enumerate(ends.tolist()):
            if e not in tree:
                candidates.add(path[u] ^ path[w] ^ (1 << e))
    need = len(ends) - num_vertices + 1
    reduced: dict[int, int] = {}
    chosen: list[int] = []
    for mask in sorted(candidates, key=lambda m: (m.bit_count(), m)):
        if len(chosen) == need:
            break
        x = mask
        while x and (x.bit_length() - 1) in reduced:
            x ^= reduced[x.bit_length() - 1]
        if x:
            reduced[x.bit_length() - 1] = x
            chosen.append(mask)
    return chosen


def _cycle_order(mask: int, ends: np.ndarray) -> tuple[list[int], list[int]]:
    """The vertices ``c_0 … c_{L−1}`` and edges ``e_0 … e_{L−1}`` (``e_i`` joins ``c_i`` and
    ``c_{i+1}``) of a simple cycle given as an edge bitmask, from its smallest vertex."""
    edges = [e for e in range(mask.bit_length()) if mask >> e & 1]
    if len(edges) == 2:  # two checks meeting the check in the same two qubits
        u, w = sorted(int(v) for v in ends[edges[0]])
        return [u, w], edges
    incident: dict[int, list[int]] = {}
    for e in edges:
        for v in ends[e].tolist():
            incident.setdefault(v, []).append(e)
    start = min(incident)
    vertices, order = [start], []
    previous = -1
    v = start
    for _ in range(len(edges)):
        e = min(x for x in incident[v] if x != previous)
        order.append(e)
        u, w = ends[e].tolist()
        v = w if u == v else u
        previous = e
        vertices.append(v)
    return vertices[:-1], order


def cellulation(
    code: CSSCode, check: int, side: Side = "z", max_weight: int = CONE_WEIGHT
) -> Cellulation:
    """The cycle basis and faces :func:`cone_check` uses for ``check`` (deterministic).

    Each basis cycle (:func:`_cycle_basis`, shortest first) of length ``L ≤ 4`` is one face.
    A longer one is cut into faces by *ear cutting*: while the remaining polygon has more than
    4 sides, three consecutive sides ``a–b–c–d`` become a face with a new chord ``a–d``, which
    replaces them as a side. The ear is the one whose ends have the most room left under
    ``budget`` for the weight ``1 + deg(v) + chords(v)`` of the check ``z_v`` (ties: lower total,
    then earliest position). So a cycle gets ``⌊(L−3)/2⌋`` chords and ``⌊(L−1)/2⌋`` faces of 3
    or 4 sides (faces of 2 sides come from two checks on the same pair of qubits)."""
    _check_code(code)
    s, o = _split(code, side)
    c = _index(check, s.shape[0], f"{side.upper()} check")
    support, edges, ends = _cone_graph(s, o, c, side)
    num_edges = len(edges)
    other = "z" if side == "x" else "x"
    max_weight = operator.index(max_weight)
    if max_weight < 3:
        raise ValueError(f"max_weight must be ≥ 3 (faces are at least triangles), got {max_weight}")
    ear = max_weight - 1  # sides cut off with each chord
    room = max_weight - 1 - code.qubit_degrees(other)[support]
    chords: list[tuple[int, int]] = []
    faces: list[tuple[int, ...]] = []
    for mask in _cycle_basis(len(support), ends):
        vertices, sides = _cycle_order(mask, ends)
        while len(sides) > max_weight:
            size = len(sides)
            best = min(
                range(size),
                key=lambda i: (
                    -min(room[vertices[i]], room[vertices[(i + ear) % size]]),
                    -int(room[vertices[i]] + room[vertices[(i + ear) % size]]),
                    i,
                ),
            )
            vertices = vertices[best:] + vertices[:best]  # the ear starts at position 0
            sides = sides[best:] + sides[:best]
            a, d = vertices[0], vertices[ear]
            chord = num_edges + len(chords)
            chords.append((min(a, d), max(a, d)))
            room[[a, d]] -= 1
            faces.append((*sorted(sides[:ear]), chord))
            vertices = [a, *vertices[ear:]]
            sides = [chord, *sides[ear:]]
        faces.append(tuple(sorted(sides)))
    return Cellulation(support, edges, ends, tuple(chords), tuple(faces))


def cone_check(code: CSSCode, check: int, side: Side = "z") -> CSSCode:
    """Coning (Hastings, "Coning"; Sabo et al., "coning"): replace one heavy check by light ones.

    Written for a Z check ``c`` (``side = "z"``; ``"x"`` exchanges ``Hx`` and ``Hz``). View the
    code as the complex ``A: C_Z --Hzᵀ--> Q --Hx--> C_X``. Every X check meets ``c`` in an even
    number of qubits; coning needs that number to be 0 or 2 ("reasonable" codes; after gauging
    to weight 3 it always is). The *check graph* ``G_c`` has the ``V = w(c)`` qubits of ``c`` as
    vertices and the ``E`` X checks meeting ``c`` as edges (each joins its two qubits of ``c``);
    it must be connected. Fill it into a 2-complex ``B`` (:func:`cellulation`): a cycle basis of
    ``E − V + 1`` shortest cycles, the long ones cut by ``J`` chords into faces of 3–4 edges
    (``F = E − V + 1 + J`` faces). With ``B`` graded as ``B_1`` = vertices, ``B_0`` = edges and
    chords, ``B_{−1}`` = faces (∂ = incidence), the chain map ``f: B → A ∖ c`` sends a vertex to
    its qubit, a check edge to its X check, and chords and faces to 0. The code is the mapping
    cone ``Cone(f)_i = (A∖c)_i ⊕ B_{i−1}``:

    * qubits: the old ones, plus one per edge (columns ``n … n+E−1``, edges in increasing check
      order) and one per chord (``n+E … n+E+J−1``);
    * Z checks: the old ones without ``c``, plus ``z_v = v + Σ_{edges, chords ∋ v} ẽ`` for each
      qubit ``v`` of ``c`` (``z_{v_0}`` takes index ``c``, the others are appended);
    * X checks: each old X check ``x`` meeting ``c`` gains its edge qubit ``x̃``; the faces are
      appended as X checks on their edge and chord qubits.

    Commutation: ``x`` meets ``z_v`` in ``{v, x̃}`` or nothing, a face meets ``z_v`` in the 0
    or 2 face edges at ``v``. ``Σ_v z_v = c`` (every edge and chord has both ends in ``c``),
    so ``c`` stays a stabiliser. ``k`` is unchanged: in the long exact sequence
    ``H_1(B) → H_1(A∖c) → H_1(Cone) → H_0(B)``, ``H_0(B) = 0`` because the faces span the
    cycle space, and ``H_1(B) = ⟨all vertices⟩`` (``G_c`` connected) maps onto ``⟨[c]⟩``, so
    ``H_1(Cone) = H_1(A∖c)/⟨[c]⟩ = H_1(A)``.

    Sizes: ``n' = n + E + J``, ``mz' = mz + V − 1``, ``mx' = mx + F``.
    Weights: ``w(z_v) = 1 + deg_X(v) + (chords at v)`` (every X check on ``v`` meets ``c``);
    faces 2 (two checks on the same pair), 3 or 4; an old X check meeting ``c`` grows by 1.
    Degrees: old qubits unchanged on both sides (``c`` is traded for ``z_v``); an edge qubit has
    Z-degree 2 and X-degree ``1 +`` (basis cycles through it); a chord qubit 2 and 2.

    Distance: ``d_X' ≥ d_X`` (an X logical restricts to one of the old code: if the restriction
    were a product of X checks, the rest would be a cycle of ``B``'s graph, a sum of faces) and
    ``d_Z' ≤ d_Z`` (old Z logicals stay logical); a new Z logical is cleaned off the new qubits
    by the ``z_v`` of one side of a cut of ``B``'s graph, so ``d_Z' ≥ min(1, h)·d_Z`` with ``h``
    the edge expansion (Cheeger constant) of the graph with its chords. (For ``side = "x"``
    exchange X and Z.)
    """
    return cone_checks(code, [check], side)


def cone_checks(code: CSSCode, checks: Sequence[int], side: Side = "z") -> CSSCode:
    """:func:`cone_check` applied to each of ``checks`` in turn, built in one step (the same
    matrices: coning one check changes neither another check's graph, its overlaps, nor the
    degrees its cellulation uses, so each cellulation is computed on ``code``). The history
    records one cone move per check."""
    _check_code(code)
    s, o = _split(code, side)
    chosen = [_index(c, s.shape[0], f"{side.upper()} check") for c in checks]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"checks must be distinct, got {chosen}")
    cells = [cellulation(code, c, side) for c in chosen]
    n, m_s, m_o = code.n, s.shape[0], o.shape[0]
    sizes = [(len(x.vertices), len(x.edges), len(x.chords), len(x.faces)) for x in cells]
    width = n + sum(E + J for _, E, J, _ in sizes)
    s_new = np.zeros((m_s + sum(V - 1 for V, *_ in sizes), width), dtype=np.uint8)
    o_new = np.zeros((m_o + sum(F for *_, F in sizes), width), dtype=np.uint8)
    s_new[:m_s, :n] = s
    o_new[:m_o, :n] = o
    col, srow, orow = n, m_s, m_o
    for c, cell, (V, E, J, F) in zip(chosen, cells, sizes, strict=True):
        # side checks: c becomes z_{v_0}; z_{v_1} … z_{v_{V−1}} are appended
        rows = np.array([c, *range(srow, srow + V - 1)])
        s_new[c] = 0
        s_new[rows, cell.vertices] = 1
        s_new[rows[cell.ends[:, 0]], col + np.arange(E)] = 1
        s_new[rows[cell.ends[:, 1]], col + np.arange(E)] = 1
        for j, (u, w) in enumerate(cell.chords):
            s_new[rows[[u, w]], col + E + j] = 1
        # other-side checks: each meeting check gains its edge qubit; the faces are appended
        o_new[cell.edges, col + np.arange(E)] = 1
        for f, face in enumerate(cell.faces):
            o_new[orow + f, col + np.array(face)] = 1
        col, srow, orow = col + E + J, srow + V - 1, orow + F
    hx, hz = _join(s_new, o_new, side)
    history = [*code.info.get("moves", []), *(str(Move.cone(c, side)) for c in chosen)]
    info: dict[str, object] = {"parent": code.name, "moves": history}
    if "k" in code.info:
        info["k"] = code.info["k"]
    name = code.name + "".join(f"|{Move.cone(c, side)}" for c in chosen)
    return CSSCode.trusted(hx, hz, name=name, info=info)


def coned_weights(code: CSSCode, check: int, side: Side = "z") -> np.ndarray:
    """The weights of the ``w(c)`` checks ``z_v`` :func:`cone_check` puts in place of ``check``
    (in support order), from :func:`cellulation` without building the code."""
    cell = cellulation(code, check, side)
    other = "z" if side == "x" else "x"
    degree = code.qubit_degrees(other)[cell.vertices]
    chords = np.zeros(len(cell.vertices), dtype=np.int64)
    for u, w in cell.chords:
        chords[[u, w]] += 1
    return 1 + degree + chords


# --------------------------------------------------------------------------------------------
# moves: apply, predict, legality


def apply_move(code: CSSCode, move: Move) -> CSSCode:
    """Apply ``move``; raises ``ValueError`` if it is not legal. Gauging walks the check's qubits
    in :func:`_gauge_order` (which keeps the other side's weights low), as the pipeline does."""
    _check_move(code, move)
    if move.kind == "copy":
        return copy_qubit(code, move.index, move.side)
    if move.kind == "gauge":
        order = _gauge_order(code, move.index, move.side)
        return gauge_check(code, move.index, move.side, order=order)
    if move.kind == "cone":
        return cone_check(code, move.index, move.side)
    return thicken(code, move.layers, move.heights, move.side)


def _check_move(code: CSSCode, move: Move) -> None:
    _check_code(code)
    if not isinstance(move, Move):
        raise ValueError(f"expected a Move, got {type(move).__name__}")
    _check_side(move.side)
    if move.kind == "copy":
        q = _index(move.index, code.n, "qubit")
        t = int(code.qubit_degrees(move.side)[q])
        if t < 2:
            raise ValueError(
                f"qubit {q} has {move.side.upper()}-degree {t}; copying needs degree ≥ 2"
            )
    elif move.kind == "gauge":
        m = code.hx.shape[0] if move.side == "x" else code.hz.shape[0]
        c = _index(move.index, m, f"{move.side.upper()} check")
        w = int(code.check_weights(move.side)[c])
        if w <= GAUGE_WEIGHT:
            raise ValueError(
                f"{move.side.upper()} check {c} has weight {w}; gauging needs weight ≥ "
                f"{GAUGE_WEIGHT + 1}"
            )
    elif move.kind == "cone":
        m = code.hx.shape[0] if move.side == "x" else code.hz.shape[0]
        c = _index(move.index, m, f"{move.side.upper()} check")
        s, o = _split(code, move.side)
        _cone_graph(s, o, c, move.side)
    elif move.kind == "thicken":
        if not MIN_LAYERS <= move.layers <= MAX_LAYERS:
            raise ValueError(
                f"a thickening move takes {MIN_LAYERS}..{MAX_LAYERS} layers, got {move.layers}"
            )
        choose_heights(code, move.layers, move.heights, move.side)
    else:
        raise ValueError(f"unknown move kind {move.kind!r}; allowed: copy, gauge, thicken, cone")


def is_legal(code: CSSCode, move: Move) -> bool:
    """Whether ``move`` can be applied and changes the code: copying a qubit of degree ≥ 2,
    gauging a check of weight ≥ 4, thickening with ``MIN_LAYERS ≤ layers ≤ MAX_LAYERS`` (2 to 6)
    and valid heights, coning a check every other-side check meets in 0 or 2 qubits, with a
    connected check graph (:func:`cone_check`)."""
    try:
        _check_move(code, move)
    except ValueError:
        return False
    return True


def predicted_size(code: CSSCode, move: Move) -> tuple[int, int, int]:
    """``(n', mx', mz')`` of ``apply_move(code, move)`` from the move's definition:

    * copy a qubit of degree ``t`` on side s: ``n + t − 1``, side s gets ``t − 1`` checks more;
    * gauge a weight-``w`` check on side s: ``n + w − 3``, side s gets ``w − 3`` checks more;
    * thicken with ``l`` layers, side z: ``(n·l + mx·(l−1), mx·l, mz + n·(l−1))``;
      side x: ``(n·l + mz·(l−1), mx + n·(l−1), mz·l)``;
    * cone a weight-``V`` check on side s whose graph has ``E`` edges and gets ``J`` chords
      (:func:`cellulation`): ``n + E + J``, side s gets ``V − 1`` checks more, the other side
      ``F = E − V + 1 + J`` (the faces).
    """
    _check_move(code, move)
    n, mx, mz = code.n, code.hx.shape[0], code.hz.shape[0]
    if move.kind == "cone":
        cell = cellulation(code, move.index, move.side)
        V, E, J, F = len(cell.vertices), len(cell.edges), len(cell.chords), len(cell.faces)
        if move.side == "z":
            return n + E + J, mx + F, mz + V - 1
        return n + E + J, mx + V - 1, mz + F
    if move.kind in ("copy", "gauge"):
        if move.kind == "copy":
            extra = int(code.qubit_degrees(move.side)[move.index]) - 1
        else:
            extra = int(code.check_weights(move.side)[move.index]) - GAUGE_WEIGHT
        return (n + extra, mx + extra, mz) if move.side == "x" else (n + extra, mx, mz + extra)
    ell = move.layers
    if move.side == "z":
        return n * ell + mx * (ell - 1), mx * ell, mz + n * (ell - 1)
    return n * ell + mz * (ell - 1), mx + n * (ell - 1), mz * ell


def is_useful(
    code: CSSCode, move: Move, max_qubits: int | None = None, max_checks: int | None = None
) -> bool:
    """Whether ``move`` is legal, makes progress, and keeps ``n' ≤ max_qubits`` and
    ``mx' + mz' ≤ max_checks`` (``None``: no limit). Progress means:

    * copy: the qubit's degree ``t ≥ 4`` (its copies have degree ≤ 3, so ``t ≤ 3`` would only
      add qubits without lowering the qubit's degree below 3, the papers' target ``q ≤ 3``);
    * gauge: the check's weight ``w ≥ 4`` (it becomes weight-3 checks);
    * thicken: the largest ``side`` qubit degree (:func:`thickened_degrees`) strictly drops;
    * cone: the check is heavier than every check replacing it (:func:`coned_weights`).
    """
    if not is_legal(code, move):
        return False
    n, mx, mz = predicted_size(code, move)
    if max_qubits is not None and n > max_qubits:
        return False
    if max_checks is not None and mx + mz > max_checks:
        return False
    if move.kind == "copy":
        return int(code.qubit_degrees(move.side)[move.index]) > COPY_DEGREE
    if move.kind == "cone":
        weight = int(code.check_weights(move.side)[move.index])
        return weight > int(coned_weights(code, move.index, move.side).max())
    if move.kind == "thicken":
        after = thickened_degrees(code, move.layers, move.heights, move.side)
        return int(after.max(initial=0)) < int(code.qubit_degrees(move.side).max(initial=0))
    return True


def useful_moves(
    code: CSSCode,
    max_qubits: int | None = None,
    max_checks: int | None = None,
    layers: Sequence[int] = (2, 3, 4),
    height_rule: str = "spread",
) -> list[Move]:
    """Every useful move (:func:`is_useful`): copies and gaugings on both sides, conings of Z
    checks, then the thickenings with each of ``layers`` and ``height_rule`` on both sides."""
    candidates: list[Move] = []
    for side in ("x", "z"):
        candidates += [Move.copy(q, side) for q in range(code.n)]
        m = code.hx.shape[0] if side == "x" else code.hz.shape[0]
        candidates += [Move.gauge(c, side) for c in range(m)]
    candidates += [Move.cone(c, "z") for c in range(code.hz.shape[0])]
    for side in ("z", "x"):
        candidates += [Move.thicken(ell, height_rule, side) for ell in layers]
    return [mv for mv in candidates if is_useful(code, mv, max_qubits, max_checks)]


def _gauge_order(code: CSSCode, check: int, side: Side) -> list[int]:
    """An order of ``check``'s support for :func:`gauge_check` that keeps the other side light:
    greedily, the next qubit is the one leaving the fewest other-side checks with odd prefix
    parity (each such check gains the next gauge qubit), ties to the lower index."""
    s, o = _split(code, side)
    rest = np.flatnonzero(s[check]).tolist()
    columns = o.astype(bool)
    odd = np.zeros(o.shape[0], dtype=bool)
    order: list[int] = []
    while rest:
        best = min(rest, key=lambda q: (int((odd ^ columns[:, q]).sum()), q))
        order.append(best)
        rest.remove(best)
        odd ^= columns[:, best]
    return order


def coned_loads(code: CSSCode, layers: int, heights: str | Sequence[int] = "cone") -> np.ndarray:
    """The X-check weights after thickening (side z) with ``layers`` and ``heights`` and then
    coning every original Z check: ``w(x) + v(i) + |{c : h(c) = i, c meets x}|`` for X check
    ``(x, i)`` (the horizontal block of :func:`thicken`'s ``Hx'``, ``(mx, layers)``)."""
    layers = _check_layers(layers)
    h = choose_heights(code, layers, heights, "z")
    hx, hz = code.hx.astype(np.int64), code.hz.astype(np.int64)
    meets = (hx @ hz.T) > 0
    load = np.zeros((hx.shape[0], layers), dtype=np.int64)
    for c in range(hz.shape[0]):
        load[meets[:, c], h[c]] += 1
    return hx.sum(1)[:, None] + _vertical_degree(layers)[None, :] + load


#: the most layers :func:`reduce_weights` tries when it chooses the number itself
MAX_AUTO_LAYERS = 64


def reduce_weights(
    code: CSSCode,
    layers: int | None = 2,
    heights: str = "spread",
    cone: bool = True,
    max_weight: int = CONE_WEIGHT,
) -> CSSCode:
    """The Sabo et al. pipeline: copy every qubit of X-degree > 3, gauge every X check of
    weight > 3 (support in the :func:`_gauge_order`), thicken (side z) with ``layers`` and
    ``heights``, then (``cone``) cone every original Z check heavier than ``max_weight``.

    Without coning, ``deg_X ≤ 3`` and ``w_X ≤ 3 + 2 = 5`` (X check ``(x, i)`` has weight
    ``w(x) + v(i)``), the vertical Z checks have weight ``2 + deg_X ≤ 5`` and the vertical
    qubits Z-degree ``w_X ≤ 3``; the original Z checks keep the weights copying and gauging
    gave them, and the horizontal qubits' Z-degrees are balanced by ``heights``.

    Coning (:func:`cone_checks`; gauging to weight 3 makes every overlap 0 or 2) replaces each
    heavy Z check by checks of weight ``1 + deg_X + chords ≤ 4 + chords`` and faces of weight
    ≤ ``max_weight``, but adds one qubit to every X check it meets: X check ``(x, i)`` ends at
    :func:`coned_loads`. ``layers=None`` takes the fewest layers (up to
    :data:`MAX_AUTO_LAYERS`) for which those weights and the thickened Z-degrees are all
    ``≤ max_weight`` (use ``heights="cone"``, which balances exactly these); if none does, the
    most. ``k`` is unchanged by every step.
    """
    _check_code(code)
    for q in range(code.n):  # the copies are appended and have degree ≤ 3
        if int(code.qubit_degrees("x")[q]) > COPY_DEGREE:
            code = copy_qubit(code, q, "x")
    for c in range(code.hx.shape[0]):  # the pieces are appended and have weight 3
        if int(code.check_weights("x")[c]) > GAUGE_WEIGHT:
            code = gauge_check(code, c, "x", order=_gauge_order(code, c, "x"))
    if layers is None:
        for layers in range(MIN_LAYERS, MAX_AUTO_LAYERS + 1):
            x_ok = int(coned_loads(code, layers, heights).max(initial=0)) <= max_weight
            z_ok = int(thickened_degrees(code, layers, heights).max(initial=0)) <= max_weight
            if x_ok and z_ok:
                break
    mz = code.hz.shape[0]
    code = thicken(code, layers, heights, "z")
    if not cone:
        return code
    heavy = [c for c in range(mz) if int(code.check_weights("z")[c]) > max_weight]
    return cone_checks(code, heavy, "z") if heavy else code


__all__ = [
    "CONE_WEIGHT",
    "COPY_DEGREE",
    "GAUGE_WEIGHT",
    "HEIGHT_RULES",
    "MAX_AUTO_LAYERS",
    "MAX_LAYERS",
    "MIN_LAYERS",
    "Cellulation",
    "Move",
    "apply_move",
    "cellulation",
    "choose_heights",
    "cone_check",
    "cone_checks",
    "coned_loads",
    "coned_weights",
    "copy_qubit",
    "gauge_check",
    "is_legal",
    "is_useful",
    "predicted_size",
    "reduce_weights",
    "thicken",
    "thickened_degrees",
    "useful_moves",
]
