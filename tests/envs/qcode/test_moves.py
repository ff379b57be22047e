"""Weight-reduction moves (copying, gauging, thickening with heights) on small CSS codes.

Codes are built here (Steane, hypergraph products of Hamming(3) and RM(1,3)) so the tests do not
depend on :mod:`rlsuite.envs.qcode.codes`. Distances are exact, by enumerating ``ker Hz`` (or
``ker Hx``) with numpy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rlsuite.envs.qcode.css import CSSCode
from rlsuite.envs.qcode.moves import (
    CONE_WEIGHT,
    HEIGHT_RULES,
    MAX_LAYERS,
    MIN_LAYERS,
    Move,
    apply_move,
    cellulation,
    choose_heights,
    cone_check,
    cone_checks,
    coned_loads,
    coned_weights,
    copy_qubit,
    gauge_check,
    is_legal,
    is_useful,
    predicted_size,
    reduce_weights,
    thicken,
    thickened_degrees,
    useful_moves,
)

STEANE_H = np.array(
    [[1, 0, 0, 1, 0, 1, 1], [0, 1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 1, 1]], dtype=np.uint8
)
HAMMING3 = np.array([[int(b) for b in f"{j:03b}"] for j in range(1, 8)], dtype=np.uint8).T
RM13 = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 1, 1, 1, 1],
        [0, 0, 1, 1, 0, 0, 1, 1],
        [0, 1, 0, 1, 0, 1, 0, 1],
    ],
    dtype=np.uint8,
)


def steane() -> CSSCode:
    return CSSCode(STEANE_H, STEANE_H, name="steane")


def hgp(h1: np.ndarray, h2: np.ndarray, name: str) -> CSSCode:
    """Tillich–Zémor: ``Hx = [H1⊗I | I⊗H2ᵀ]``, ``Hz = [I⊗H2 | H1ᵀ⊗I]``."""
    (m1, n1), (m2, n2) = h1.shape, h2.shape
    hx = np.hstack(
        [np.kron(h1, np.eye(n2, dtype=np.uint8)), np.kron(np.eye(m1, dtype=np.uint8), h2.T)]
    )
    hz = np.hstack(
        [np.kron(np.eye(n1, dtype=np.uint8), h2), np.kron(h1.T, np.eye(m2, dtype=np.uint8))]
    )
    return CSSCode(hx, hz, name=name)


# --------------------------------------------------------------------------------------------
# numpy GF(2) helpers for exact distances


def rref(a: np.ndarray) -> tuple[np.ndarray, list[int]]:
    r = (np.asarray(a) % 2).astype(np.uint8).copy()
    pivots: list[int] = []
    row = 0
    for col in range(r.shape[1]):
        hits = np.flatnonzero(r[row:, col]) + row
        if not len(hits):
            continue
        r[[row, hits[0]]] = r[[hits[0], row]]
        others = np.flatnonzero(r[:, col])
        others = others[others != row]
        r[others] ^= r[row]
        pivots.append(col)
        row += 1
        if row == r.shape[0]:
            break
    return r[:row], pivots


def rank2(a: np.ndarray) -> int:
    return len(rref(a)[1]) if a.size else 0


def nullspace(a: np.ndarray) -> np.ndarray:
    n = a.shape[1]
    r, pivots = rref(a)
    free = [c for c in range(n) if c not in pivots]
    basis = np.zeros((len(free), n), dtype=np.uint8)
    for i, f in enumerate(free):
        basis[i, f] = 1
        for row, p in enumerate(pivots):
            basis[i, p] = r[row, f]
    return basis


def logical_distance(h_commute: np.ndarray, h_stab: np.ndarray) -> int:
    """Least weight of ``ker h_commute`` outside ``rowspace h_stab`` (exhaustive)."""
    kernel = nullspace(h_commute)
    dim = kernel.shape[0]
    if dim > 20:
        raise ValueError(f"kernel dimension {dim} is too large to enumerate")
    coeffs = np.array(list(itertools.product((0, 1), repeat=dim)), dtype=np.uint8)
    vectors = (coeffs.astype(np.int64) @ kernel.astype(np.int64) % 2).astype(np.uint8)
    residual = vectors.copy()
    r, pivots = rref(h_stab)
    for row, p in zip(r, pivots, strict=True):
        residual[residual[:, p] == 1] ^= row
    logical = residual.any(1)
    return int(vectors[logical].sum(1).min())


def distances(code: CSSCode) -> tuple[int, int]:
    """``(d_X, d_Z)``."""
    return logical_distance(code.hz, code.hx), logical_distance(code.hx, code.hz)


def fast_k(code: CSSCode) -> int:
    return code.n - rank2(code.hx) - rank2(code.hz)


# --------------------------------------------------------------------------------------------
# copying


@pytest.mark.parametrize("side", ["x", "z"])
def test_copy_sizes_degrees_and_distance(side: str) -> None:
    code = hgp(HAMMING3, HAMMING3, "hgp_ham")
    degrees = code.qubit_degrees(side)
    q = int(np.argmax(degrees))
    t = int(degrees[q])
    assert t == 4
    out = copy_qubit(code, q, side)
    assert out.n == code.n + t - 1
    assert predicted_size(code, Move.copy(q, side)) == (out.n, out.hx.shape[0], out.hz.shape[0])
    copies = [q, *range(code.n, code.n + t - 1)]
    assert out.qubit_degrees(side)[copies].tolist() == [2, 3, 3, 2]
    other = "z" if side == "x" else "x"
    assert (out.qubit_degrees(other)[copies] == code.qubit_degrees(other)[q]).all()
    assert out.k == code.k == 16
    untouched = [i for i in range(code.n) if i != q]
    assert (out.qubit_degrees(side)[untouched] == degrees[untouched]).all()


def test_copy_steane_keeps_distance() -> None:
    code = steane()
    out = copy_qubit(code, 6, "x")  # qubit 6 is in all three X checks
    assert (out.n, out.k) == (9, 1)
    d_x, d_z = distances(out)
    assert d_x == 3 and d_z >= 3


def test_copy_rejects_low_degree_and_bad_index() -> None:
    code = steane()
    with pytest.raises(ValueError, match="degree"):
        copy_qubit(code, 0, "x")  # degree 1
    with pytest.raises(ValueError, match="out of range"):
        copy_qubit(code, 7, "x")
    with pytest.raises(ValueError, match="side"):
        copy_qubit(code, 6, "y")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# gauging


@pytest.mark.parametrize("side", ["x", "z"])
def test_gauge_sizes_and_weights(side: str) -> None:
    code = hgp(HAMMING3, HAMMING3, "hgp_ham")
    weights = code.check_weights(side)
    c = int(np.argmax(weights))
    w = int(weights[c])
    assert w == 7
    out = gauge_check(code, c, side)
    assert out.n == code.n + w - 3
    assert predicted_size(code, Move.gauge(c, side)) == (out.n, out.hx.shape[0], out.hz.shape[0])
    m = weights.shape[0]
    pieces = [c, *range(m, m + w - 3)]
    assert (out.check_weights(side)[pieces] == 3).all()
    # the pieces multiply back to the original check on the old qubits
    s_new = out.hx if side == "x" else out.hz
    s_old = code.hx if side == "x" else code.hz
    total = s_new[pieces].sum(0) % 2
    assert (total[: code.n] == s_old[c]).all() and not total[code.n :].any()
    # degrees of the old qubits on this side are unchanged; new qubits have degree 2
    assert (out.qubit_degrees(side)[: code.n] == code.qubit_degrees(side)).all()
    assert (out.qubit_degrees(side)[code.n :] == 2).all()
    assert out.k == code.k


def test_gauge_steane_lowers_distance() -> None:
    code = steane()
    assert distances(code) == (3, 3)
    out = gauge_check(code, 0, "x")
    assert (out.n, out.k) == (8, 1)
    d_x, d_z = distances(out)
    assert (d_x, d_z) == (2, 3)  # d_X drops; d_Z' ≥ d_Z
    assert min(d_x, d_z) == 2


def test_gauge_distance_matches_qldpc() -> None:
    qldpc = pytest.importorskip("qldpc")
    out = gauge_check(steane(), 0, "x")
    assert qldpc.codes.CSSCode(out.hx, out.hz).get_distance_exact() == 2


def test_gauge_order_and_rejections() -> None:
    code = steane()
    support = np.flatnonzero(code.hx[0]).tolist()
    out = gauge_check(code, 0, "x", order=support[::-1])
    assert out.n == 8 and out.k == 1
    with pytest.raises(ValueError, match="permutation"):
        gauge_check(code, 0, "x", order=[0, 1, 2, 3])
    small = copy_qubit(code, 6, "x")
    with pytest.raises(ValueError, match="weight"):
        gauge_check(small, 3, "x")  # a weight-2 chain check
    with pytest.raises(ValueError, match="out of range"):
        gauge_check(code, 3, "x")


# --------------------------------------------------------------------------------------------
# thickening


@pytest.mark.parametrize("layers", [2, 3, 4])
@pytest.mark.parametrize("side", ["z", "x"])
def test_thicken_sizes_and_degree_formula(layers: int, side: str) -> None:
    code = hgp(HAMMING3, HAMMING3, "hgp_ham")
    n, mx, mz = code.n, code.hx.shape[0], code.hz.shape[0]
    for rule in HEIGHT_RULES:
        out = thicken(code, layers, rule, side)
        if side == "z":
            expected = (n * layers + mx * (layers - 1), mx * layers, mz + n * (layers - 1))
        else:
            expected = (n * layers + mz * (layers - 1), mx + n * (layers - 1), mz * layers)
        assert (out.n, out.hx.shape[0], out.hz.shape[0]) == expected
        assert predicted_size(code, Move.thicken(layers, rule, side)) == expected
        assert (thickened_degrees(code, layers, rule, side) == out.qubit_degrees(side)).all()
        assert fast_k(out) == 16


def test_thicken_steane_distance_balancing() -> None:
    code = steane()
    for layers in (2, 3):
        out = thicken(code, layers, "spread")
        assert out.k == 1
        assert distances(out) == (3 * layers, 3)  # d_X' = l·d_X, d_Z' = d_Z


def test_thicken_heights_do_not_change_the_stabilizer_group() -> None:
    code = steane()
    ref = thicken(code, 3, "zero")
    for heights in ([0, 1, 2], [2, 2, 1], "spread", "round_robin"):
        out = thicken(code, 3, heights)
        assert (out.hx == ref.hx).all()
        both = np.vstack([ref.hz, out.hz])
        assert rank2(both) == rank2(ref.hz) == rank2(out.hz)


def test_spread_heights_guarantee() -> None:
    """Proven: "spread" is never worse than "zero" (``≤ max deg_Z + 1``). Observed on this
    code (not a general guarantee): ``≤ ⌈max deg_Z / l⌉ + 2``."""
    base = hgp(HAMMING3, HAMMING3, "hgp_ham")
    for q in range(base.n):
        if base.qubit_degrees("x")[q] > 3:
            base = copy_qubit(base, q, "x")
    for c in range(base.hx.shape[0]):
        if base.check_weights("x")[c] > 3:
            base = gauge_check(base, c, "x")
    top = int(base.qubit_degrees("z").max())
    for layers in (2, 3, 4):
        zero = int(thickened_degrees(base, layers, "zero").max())
        spread = int(thickened_degrees(base, layers, "spread").max())
        assert zero == top + 1
        assert spread <= zero
        assert spread <= math.ceil(top / layers) + 2


def test_heights_validation() -> None:
    code = steane()
    with pytest.raises(ValueError, match="one layer per"):
        thicken(code, 2, [0, 1])
    with pytest.raises(ValueError, match="not a layer"):
        thicken(code, 2, [0, 1, 2])
    with pytest.raises(ValueError, match="unknown height rule"):
        thicken(code, 2, "random")
    with pytest.raises(ValueError, match="layers"):
        thicken(code, 1)
    assert choose_heights(code, 3, "round_robin").tolist() == [0, 1, 2]
    assert not is_legal(code, Move.thicken(7))  # MAX_LAYERS = 6


def test_is_legal_layer_range_is_min_to_max_layers() -> None:
    """``is_legal`` accepts exactly ``MIN_LAYERS..MAX_LAYERS`` = 2..6 layers, as its docstring
    says (it used to say 2..4)."""
    code = steane()
    assert (MIN_LAYERS, MAX_LAYERS) == (2, 6)
    legal = [layers for layers in range(0, 9) if is_legal(code, Move.thicken(layers))]
    assert legal == [2, 3, 4, 5, 6]
    assert "MIN_LAYERS ≤ layers ≤ MAX_LAYERS`` (2 to 6)" in (is_legal.__doc__ or "")


# --------------------------------------------------------------------------------------------
# legality, usefulness, pipeline


def test_legal_and_useful() -> None:
    code = steane()
    assert not is_legal(code, Move.copy(0, "x"))  # degree 1
    assert is_legal(code, Move.copy(3, "x")) and not is_useful(code, Move.copy(3, "x"))
    assert is_legal(code, Move.gauge(0, "x")) and is_useful(code, Move.gauge(0, "x"))
    assert not is_useful(code, Move.gauge(0, "x"), max_qubits=7)
    assert not is_useful(code, Move.gauge(0, "x"), max_checks=6)
    # thickening Steane cannot lower the Z-degree: the vertical qubits have degree w_X = 4
    assert not is_useful(code, Move.thicken(2))
    hg = hgp(HAMMING3, HAMMING3, "hgp_ham")
    moves = useful_moves(hg, max_qubits=200, max_checks=200)
    kinds = {(m.kind, m.side) for m in moves}
    # HGP X and Z checks overlap in 0 or 2 qubits, so its Z checks can be coned as they are
    assert kinds == {("copy", "x"), ("copy", "z"), ("gauge", "x"), ("gauge", "z"), ("cone", "z")}
    assert all(is_useful(hg, m, 200, 200) for m in moves)


@pytest.mark.parametrize("layers", [2, 3])
def test_pipeline_hgp_hamming(layers: int) -> None:
    code = hgp(HAMMING3, HAMMING3, "hgp_ham")
    out = reduce_weights(code, layers, "spread", cone=False)
    assert out.k == 16
    assert int(out.check_weights("x").max()) <= 6
    assert int(out.check_weights("x").max()) == (4 if layers == 2 else 5)
    assert int(out.qubit_degrees("x").max()) <= 3
    # without coning the Z checks keep the weight copying and gauging gave them
    assert int(out.check_weights("z").max()) > 6


# --------------------------------------------------------------------------------------------
# coning

#: a cycle of 7 qubits with a triangle 3–7–8–9 hanging off qubit 3 (Sabo et al.'s coning
#: example, 0-based): X checks are edges of weight 2, the single Z check is all 10 qubits
CONE_EDGES = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (4, 5),
    (5, 6),
    (0, 6),
    (3, 7),
    (7, 8),
    (8, 9),
    (7, 9),
]


def cone_example() -> CSSCode:
    hx = np.zeros((len(CONE_EDGES), 10), dtype=np.uint8)
    for row, (u, w) in enumerate(CONE_EDGES):
        hx[row, [u, w]] = 1
    return CSSCode(hx, np.ones((1, 10), dtype=np.uint8), name="cone_example")


def _check_cone(code: CSSCode, c: int, side: str = "z") -> CSSCode:
    """Cone ``c`` and check everything :func:`cone_check` documents."""
    out = cone_check(code, c, side)  # type: ignore[arg-type]
    cell = cellulation(code, c, side)  # type: ignore[arg-type]
    other = "x" if side == "z" else "z"
    V, E, J, F = len(cell.vertices), len(cell.edges), len(cell.chords), len(cell.faces)
    assert F == E - V + 1 + J
    size = (out.n, out.hx.shape[0], out.hz.shape[0])
    assert predicted_size(code, Move.cone(c, side)) == size  # type: ignore[arg-type]
    assert out.n == code.n + E + J
    s_old, s_new = (code.hz, out.hz) if side == "z" else (code.hx, out.hx)
    m = s_old.shape[0]
    rows = [c, *range(m, m + V - 1)]
    assert (out.check_weights(side)[rows] == coned_weights(code, c, side)).all()  # type: ignore[arg-type]
    # the replacing checks multiply back to the coned one
    total = s_new[rows].sum(0) % 2
    assert (total[: code.n] == s_old[c]).all() and not total[code.n :].any()
    # faces have weight ≤ 6; old qubits keep their degrees on both sides
    faces = out.check_weights(other)[(code.hx if side == "z" else code.hz).shape[0] :]
    assert len(faces) == F and faces.max(initial=2) <= CONE_WEIGHT
    for t in ("x", "z"):
        assert (out.qubit_degrees(t)[: code.n] == code.qubit_degrees(t)).all()
    assert fast_k(out) == fast_k(code)
    return out


def test_cone_example_sizes_weights_and_distance() -> None:
    code = cone_example()
    assert code.k == 0  # every Z operator commuting with the X checks is the stabiliser
    cell = cellulation(code, 0)
    assert len(cell.edges) == 11 and cell.num_cycles == 2
    # the 7-cycle is cut by one chord into faces of 6 and 3 sides; the triangle is one face
    assert sorted(len(f) for f in cell.faces) == [3, 3, 6] and len(cell.chords) == 1
    out = _check_cone(code, 0)
    assert out.n == 10 + 11 + 1 and out.hz.shape[0] == 10 and out.hx.shape[0] == 11 + 3
    assert int(out.check_weights("z").max()) <= 5


@pytest.mark.parametrize("side", ["z", "x"])
def test_cone_gauged_steane_keeps_k_and_bounds_distance(side: str) -> None:
    """Gauge the other side to weight 3 (overlaps 0 or 2), then cone each check on ``side``:
    the distance on the coned side's type can only grow and the other only shrink (proven);
    the exact values are checked by enumeration."""
    other = "x" if side == "z" else "z"
    base = gauged_steane(other)
    assert (base.n, base.k) == (10, 1)
    d_x, d_z = distances(base)
    m = (base.hz if side == "z" else base.hx).shape[0]
    code = base
    for c in range(m):
        if not is_legal(code, Move.cone(c, side)):  # type: ignore[arg-type]
            continue
        code = _check_cone(code, c, side)
    assert code.k == 1 and code.n > base.n
    d_x2, d_z2 = distances(code)
    if side == "z":
        assert d_x2 >= d_x and d_z2 <= d_z
    else:
        assert d_z2 >= d_z and d_x2 <= d_x
    # [[10,1]] → [[25,1]]: the coned side's distance 2 → 4, the other 3 → 2
    before, after = ((2, 3), (4, 2)) if side == "z" else ((3, 2), (2, 4))
    assert (code.n, (d_x, d_z), (d_x2, d_z2)) == (25, before, after)


def gauged_steane(side: str) -> CSSCode:
    """Steane with every ``side`` check gauged to weight 3: [[10, 1]]."""
    code = steane()
    for c in range(3):
        code = gauge_check(code, c, side)  # type: ignore[arg-type]
    return code


def test_cone_distance_matches_qldpc() -> None:
    qldpc = pytest.importorskip("qldpc")
    out = cone_check(gauged_steane("x"), 1, "z")
    d = qldpc.codes.CSSCode(out.hx.astype(int), out.hz.astype(int)).get_distance_exact()
    assert d == min(distances(out))


def test_cone_many_equals_sequential() -> None:
    code = reduce_weights(hgp(HAMMING3, HAMMING3, "hgp_ham"), 2, "spread", cone=False)
    checks = [0, 3, 5]
    one_by_one = code
    for c in checks:
        one_by_one = cone_check(one_by_one, c)
    together = cone_checks(code, checks)
    assert (together.hx == one_by_one.hx).all() and (together.hz == one_by_one.hz).all()
    assert together.info["moves"] == one_by_one.info["moves"]
    assert together.k == 16


def test_cone_rejections_and_usefulness() -> None:
    steane_code = steane()  # X checks meet Z checks in 2 qubits but weight-4 overlaps exist
    with pytest.raises(ValueError, match="0 or 2"):
        cone_check(steane_code, 0)
    assert not is_legal(steane_code, Move.cone(0))
    with pytest.raises(ValueError, match="out of range"):
        cone_check(cone_example(), 1)
    # two disjoint triangles under one Z check: two pieces, each a Z operator of its own
    hx = np.zeros((6, 6), dtype=np.uint8)
    for row, (u, w) in enumerate([(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]):
        hx[row, [u, w]] = 1
    split = CSSCode(hx, np.ones((1, 6), dtype=np.uint8))
    with pytest.raises(ValueError, match="connected pieces"):
        cone_check(split, 0)
    assert is_legal(cone_example(), Move.cone(0)) and is_useful(cone_example(), Move.cone(0))
    assert str(Move.cone(3)) == "cone(z,3)"
    assert apply_move(cone_example(), Move.cone(0)).n == 22


def test_cone_heights_rule_predicts_coned_x_weights() -> None:
    """:func:`coned_loads` is exactly the X-check weight after thickening and coning."""
    code = gauged_steane("x")
    for layers in (2, 3):
        h = choose_heights(code, layers, "cone")
        assert h.shape == (3,) and set(h.tolist()) <= set(range(layers))
        out = cone_checks(thicken(code, layers, "cone"), [0, 1, 2])
        assert fast_k(out) == 1
        horizontal = out.check_weights("x")[: code.hx.shape[0] * layers]
        assert (horizontal.reshape(-1, layers) == coned_loads(code, layers, "cone")).all()


def test_pipeline_hgp_hamming_coned() -> None:
    """Copy → gauge → thicken ("cone" heights, fewest layers) → cone: every check ≤ 6."""
    code = hgp(HAMMING3, HAMMING3, "hgp_ham")
    out = reduce_weights(code, None, "cone")
    assert out.k == 16
    assert int(out.check_weights("x").max()) <= 6
    assert int(out.check_weights("z").max()) <= 6
    assert int(out.qubit_degrees("z").max()) <= 3
    assert int(out.qubit_degrees("x").max()) <= 7
    assert "thicken(z,l=6,cone)" in out.info["moves"]
    assert (out.n, out.hx.shape[0], out.hz.shape[0]) == (1902, 738, 1148)


# --------------------------------------------------------------------------------------------
# random move sequences


BASES = {"steane": steane, "hgp_ham": lambda: hgp(HAMMING3, HAMMING3, "hgp_ham")}
MAX_QUBITS, MAX_CHECKS = 260, 260


def _candidates(code: CSSCode) -> list[Move]:
    moves: list[Move] = []
    for side in ("x", "z"):
        moves += [Move.copy(q, side) for q in range(code.n)]
        m = code.hx.shape[0] if side == "x" else code.hz.shape[0]
        moves += [Move.gauge(c, side) for c in range(m)]
        moves += [Move.thicken(ell, r, side) for ell in (2, 3) for r in HEIGHT_RULES]
        moves += [Move.cone(c, side) for c in range(m)]
    legal = [mv for mv in moves if is_legal(code, mv)]
    fits = []
    for mv in legal:
        n, mx, mz = predicted_size(code, mv)
        if n <= MAX_QUBITS and mx + mz <= MAX_CHECKS:
            fits.append(mv)
    return fits


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_random_move_sequences(base: str, data: st.DataObject) -> None:
    code = BASES[base]()
    k = fast_k(code)
    for _ in range(4):
        options = _candidates(code)
        if not options:
            break
        move = data.draw(st.sampled_from(options), label="move")
        out = apply_move(code, move)
        again = apply_move(code, move)
        assert (out.hx == again.hx).all() and (out.hz == again.hz).all()  # deterministic
        assert predicted_size(code, move) == (out.n, out.hx.shape[0], out.hz.shape[0])
        for h in (out.hx, out.hz):
            assert h.dtype == np.uint8 and set(np.unique(h).tolist()) <= {0, 1}
            assert h.any(1).all()
        assert not ((out.hx.astype(np.int64) @ out.hz.T.astype(np.int64)) % 2).any()
        assert fast_k(out) == k
        if move.kind == "thicken":
            predicted = thickened_degrees(code, move.layers, move.heights, move.side)
            assert (predicted == out.qubit_degrees(move.side)).all()
            top = int(code.qubit_degrees(move.side).max())
            if move.heights in ("spread", "zero"):
                horizontal = predicted[: code.n * move.layers]
                assert int(horizontal.max()) <= max(top + 1, 2)
        code = out
