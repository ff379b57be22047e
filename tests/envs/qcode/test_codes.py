"""Named codes and code files: exact parameters, qldpc cross-checks, alist/npz round trips."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from rlsuite.envs.qcode import gf2
from rlsuite.envs.qcode.codes import (
    NAMED_CODES,
    bb72,
    bivariate_bicycle,
    gross,
    hamming,
    hypergraph_product,
    load_code,
    named_code,
    random_regular_ldpc,
    read_alist,
    reed_muller,
    repetition,
    rotated_surface,
    save_code,
    steane,
    toric,
    write_alist,
)
from rlsuite.envs.qcode.css import CodeError, CSSCode


def brute_force(h: np.ndarray) -> tuple[int, int, int]:
    """(n, k, d) of ker h by enumerating every codeword (k small)."""
    basis, valid = gf2.kernel(h)
    basis = basis[0][valid[0]].numpy().astype(np.int64)
    k = basis.shape[0]
    coefficients = (np.arange(1, 2**k)[:, None] >> np.arange(k)[None, :]) & 1
    words = coefficients @ basis % 2
    assert not (h.astype(np.int64) @ words.T % 2).any()
    return h.shape[1], k, int(words.sum(1).min())


# --------------------------------------------------------------------------- classical


@pytest.mark.parametrize("r", [2, 3, 4])
def test_hamming(r: int) -> None:
    h = hamming(r)
    assert h.dtype == np.uint8 and h.shape == (r, 2**r - 1)
    columns = {tuple(c) for c in h.T}
    assert len(columns) == 2**r - 1 and (0,) * r not in columns
    assert brute_force(h) == (2**r - 1, 2**r - 1 - r, 3)
    assert gf2.rank(h) == r


@pytest.mark.parametrize(("r", "m"), [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (1, 4), (2, 4)])
def test_reed_muller(r: int, m: int) -> None:
    h = reed_muller(r, m)
    dimension = sum(math.comb(m, i) for i in range(r + 1))
    assert h.dtype == np.uint8 and h.any(1).all()
    assert h.shape == (2**m - dimension, 2**m) and gf2.rank(h) == h.shape[0]
    assert brute_force(h) == (2**m, dimension, 2 ** (m - r))


def test_rm13_is_self_dual_extended_hamming() -> None:
    h = reed_muller(1, 3)
    assert brute_force(h) == (8, 4, 4)
    assert not (h.astype(int) @ h.T.astype(int) % 2).any()  # the code contains its dual


@pytest.mark.parametrize("n", [2, 3, 5, 6])
@pytest.mark.parametrize("cyclic", [False, True])
def test_repetition(n: int, cyclic: bool) -> None:
    h = repetition(n, cyclic=cyclic)
    assert h.shape == (n if cyclic else n - 1, n)
    assert (h.sum(1) == 2).all()
    assert brute_force(h) == (n, 1, n)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: hamming(1), "Hamming r must be an integer ≥ 2, got 1"),
        (lambda: hamming(3.0), "Hamming r must be an integer ≥ 2, got 3.0"),
        (lambda: reed_muller(3, 3), "Reed–Muller r must be in 0..m−1 = 0..2"),
        (lambda: reed_muller(1, 0), "Reed–Muller m must be an integer ≥ 1, got 0"),
        (lambda: repetition(1), "repetition length n must be an integer ≥ 2, got 1"),
        (lambda: random_regular_ldpc(10, 3, 4, 0), "n·dv = 30 is not divisible by dc = 4"),
        (lambda: random_regular_ldpc(4, 6, 8, 0), "needs dc ≤ n distinct bits"),
        (lambda: random_regular_ldpc(12, 3, 4, -1), "LDPC seed must be an integer ≥ 0"),
    ],
)
def test_classical_errors(call, message: str) -> None:
    with pytest.raises(CodeError, match=re.escape(message)):
        call()


@pytest.mark.parametrize(
    ("n", "dv", "dc"), [(12, 3, 4), (20, 3, 6), (30, 4, 6), (7, 2, 7), (4, 3, 4)]
)
def test_random_regular_ldpc(n: int, dv: int, dc: int) -> None:
    for seed in range(5):
        h = random_regular_ldpc(n, dv, dc, seed)
        assert h.dtype == np.uint8 and h.shape == (n * dv // dc, n)
        assert (h.sum(0) == dv).all() and (h.sum(1) == dc).all()
        np.testing.assert_array_equal(h, random_regular_ldpc(n, dv, dc, seed))


def test_random_regular_ldpc_seeds_differ() -> None:
    draws = {random_regular_ldpc(40, 3, 6, seed).tobytes() for seed in range(5)}
    assert len(draws) == 5


# --------------------------------------------------------------------------- quantum

# name, constructor, n, k, d, max check weight, max qubit degree
TABLE = [
    ("steane", steane, 7, 1, 3, 4, 3),
    ("toric:3", lambda: toric(3), 18, 2, 3, 4, 2),
    ("toric:4", lambda: toric(4), 32, 2, 4, 4, 2),
    ("toric:6", lambda: toric(6), 72, 2, 6, 4, 2),
    ("surface:3", lambda: rotated_surface(3), 9, 1, 3, 4, 2),
    ("surface:5", lambda: rotated_surface(5), 25, 1, 5, 4, 2),
    ("hgp:hamming:3", lambda: named_code("hgp:hamming:3"), 58, 16, 3, 7, 4),
    ("hgp:rm:1:3", lambda: named_code("hgp:rm:1:3"), 80, 16, 4, 12, 8),
    ("hgp:repetition:3", lambda: named_code("hgp:repetition:3"), 13, 1, 3, 4, 2),
    ("bb72", bb72, 72, 12, 6, 6, 3),
    ("gross", gross, 144, 12, 12, 6, 3),
]


@pytest.mark.parametrize(("name", "build", "n", "k", "d", "weight", "degree"), TABLE)
def test_parameters(name, build, n: int, k: int, d: int, weight: int, degree: int) -> None:
    code = build()
    assert isinstance(code, CSSCode) and code.name == name
    assert (code.n, code.k) == (n, k)
    assert (code.max_check_weight, code.max_qubit_degree) == (weight, degree)
    assert code.info["known_distance"] == d
    assert code.info["known_parameters"] == (n, k, d)


def test_regular_weights() -> None:
    for code in (toric(5), bb72(), gross()):
        target = (4, 2) if code.name.startswith("toric") else (6, 3)
        for side in ("x", "z"):
            assert (code.check_weights(side) == target[0]).all()
            assert (code.qubit_degrees(side) == target[1]).all()
    surface = rotated_surface(5)
    assert sorted(set(surface.check_weights("x").tolist())) == [2, 4]
    assert surface.hx.shape == surface.hz.shape == (12, 25)


def test_weights_and_degrees_are_signed_int64() -> None:
    """``check_weights`` / ``qubit_degrees`` are int64, so differences go negative (the sums of
    the uint8 matrices were unsigned: ``w − 10`` wrapped around to ~1.8e19)."""
    surface = rotated_surface(5)  # X checks of weight 2 (boundary) and 4, qubit degrees 1 and 2
    for side in ("x", "z"):
        assert surface.check_weights(side).dtype == np.int64
        assert surface.qubit_degrees(side).dtype == np.int64
    assert sorted(set((surface.check_weights("x") - 10).tolist())) == [-8, -6]
    assert sorted(set((surface.qubit_degrees("z") - 3).tolist())) == [-2, -1]
    assert int((steane().check_weights("z") - 10).min()) == -6


def test_hypergraph_product_convention() -> None:
    h1, h2 = hamming(3), repetition(4, cyclic=True)  # (3 × 7) and (4 × 4)
    code = hypergraph_product(h1, h2)
    (m1, n1), (m2, n2) = h1.shape, h2.shape
    assert code.n == n1 * n2 + m1 * m2
    assert code.hx.shape == (m1 * n2, code.n) and code.hz.shape == (n1 * m2, code.n)
    k1, k2 = n1 - gf2.rank(h1), n2 - gf2.rank(h2)
    k1t, k2t = m1 - gf2.rank(h1), m2 - gf2.rank(h2)
    assert code.k == k1 * k2 + k1t * k2t == 4
    assert code.info["classical_k"] == (k1, k2)
    # X check (i, j): row i of H1 on bit × bit qubits (·, j), column j of H2 on (i, ·)
    np.testing.assert_array_equal(
        code.check_weights("x").reshape(m1, n2), h1.sum(1)[:, None] + h2.sum(0)[None, :]
    )


def test_bivariate_bicycle_validation() -> None:
    code = bivariate_bicycle(3, 3, [(1, 0), (0, 1)], [(-1, 0), (0, 2)])
    assert code.n == 18 and (code.check_weights("x") == 4).all()
    with pytest.raises(CodeError, match="A repeats the monomial x\\^1 y\\^0"):
        bivariate_bicycle(3, 3, [(1, 0), (4, 0)], [(0, 1)])
    with pytest.raises(CodeError, match="B needs at least one monomial"):
        bivariate_bicycle(3, 3, [(1, 0)], [])
    with pytest.raises(CodeError, match="terms must be \\(i, j\\) exponent pairs"):
        bivariate_bicycle(3, 3, [(1, 0, 0)], [(0, 1)])


def test_named_codes_round_trip() -> None:
    for name in NAMED_CODES:
        code = named_code(name)
        assert code.name == name
        again = named_code(code.name)
        np.testing.assert_array_equal(code.hx, again.hx)
        np.testing.assert_array_equal(code.hz, again.hz)
    assert named_code(" Toric:3 ").name == "toric:3"
    assert "known_distance" not in named_code("hgp:ldpc:12:3:4:0").info


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("shor", "unknown code name 'shor'; known forms: steane, toric:L, surface:d"),
        ("toric", "must have the form 'toric:L'"),
        ("toric:x", "the parameters of 'toric:L' must be integers"),
        ("surface:4", "distance d must be odd"),
        ("hgp:golay:3", "unknown hypergraph-product family 'golay'"),
        ("hgp:rm:1", "must have the form 'hgp:rm:r:m'"),
        ("hgp:ldpc:10:3:4:0", "not divisible by dc = 4"),
        ("steane:3", "unknown code name"),
    ],
)
def test_named_code_errors(name: str, message: str) -> None:
    with pytest.raises(CodeError, match=message):
        named_code(name)


# --------------------------------------------------------------------------- qldpc cross-checks


def qldpc_reference():
    qldpc = pytest.importorskip("qldpc")
    sympy = pytest.importorskip("sympy")
    x, y = sympy.symbols("x y")
    q = qldpc.codes
    return qldpc, {
        "steane": lambda: q.SteaneCode(),
        "toric:3": lambda: q.ToricCode(3, rotated=False),
        "toric:4": lambda: q.ToricCode(4, rotated=False),
        "toric:6": lambda: q.ToricCode(6, rotated=False),
        "surface:3": lambda: q.SurfaceCode(3),
        "surface:5": lambda: q.SurfaceCode(5),
        "hgp:hamming:3": lambda: q.HGPCode(q.ClassicalCode(hamming(3))),
        "hgp:rm:1:3": lambda: q.HGPCode(q.ClassicalCode(reed_muller(1, 3))),
        "bb72": lambda: q.BBCode({x: 6, y: 6}, x**3 + y + y**2, y**3 + x + x**2),
        "gross": lambda: q.BBCode({x: 12, y: 6}, x**3 + y + y**2, y**3 + x + x**2),
    }


#: the starting codes checked against qldpc (the gross code's exact distance is out of reach)
SMALL_CODES = (
    "steane",
    "toric:3",
    "toric:4",
    "toric:6",
    "surface:3",
    "surface:5",
    "hgp:hamming:3",
    "hgp:rm:1:3",
)


def qldpc_qubit_order(name: str, n: int) -> np.ndarray:
    """qldpc's qubit order as indices into ours: its qubit ``q`` is our qubit ``order[q]``.

    Rotated surface codes: both number the d × d grid row by row, but qldpc puts the weight-2
    X checks on the left and right boundaries (Z on top and bottom) where ours has them on top
    and bottom: its grid is ours transposed, its qubit ``d·r + c`` our ``d·c + r``. Every other
    construction numbers the qubits as ours does: Steane (the Hamming [7, 4] columns), toric
    (qldpc's HGP of two repetition codes), HGP (``[H1 ⊗ I, I ⊗ H2ᵀ]`` blocks), BB (``[A | B]``).
    """
    if name.startswith("surface:"):
        d = math.isqrt(n)
        return np.arange(n).reshape(d, d).T.ravel()
    return np.arange(n)


@pytest.mark.parametrize("name", [*SMALL_CODES, "bb72", "gross"])
def test_matches_qldpc_construction(name: str) -> None:
    """The same code, not just the same (n, k): on each side our checks (in qldpc's qubit
    order) and qldpc's span the same GF(2) row space - equal ranks, and stacking one on the
    other adds no rank (ranks by galois, not by the code under test)."""
    _, reference = qldpc_reference()
    galois = pytest.importorskip("galois")
    theirs = reference[name]()
    ours = named_code(name)
    assert (ours.n, ours.k) == (theirs.num_qubits, theirs.dimension)
    order = qldpc_qubit_order(name, ours.n)
    rank = np.linalg.matrix_rank
    for side, mine, other in (("X", ours.hx, theirs.matrix_x), ("Z", ours.hz, theirs.matrix_z)):
        a = galois.GF2(np.asarray(mine, dtype=np.uint8)[:, order] % 2)
        b = galois.GF2(np.asarray(other.view(np.ndarray), dtype=np.uint8) % 2)
        assert a.shape == b.shape, side
        ours_rank, their_rank, joint = (int(rank(m)) for m in (a, b, np.vstack([a, b])))
        assert ours_rank == their_rank == joint, (
            f"{side}: rank ours {ours_rank}, qldpc {their_rank}, stacked {joint}"
        )


@pytest.mark.parametrize("name", [*SMALL_CODES, "hgp:repetition:3", "bb72"])
def test_exact_distance(name: str) -> None:
    qldpc, _ = qldpc_reference()
    code = named_code(name)
    distance = qldpc.codes.CSSCode(code.hx, code.hz).get_distance_exact()
    assert distance == code.info["known_distance"]


# No exact-distance test for the gross code: qldpc's Brouwer–Zimmermann search for d = 12 ran
# over 20 minutes on a 2-core machine without finishing (BB72's d = 6 takes ~0.2 s).


# --------------------------------------------------------------------------- files


def test_npz_round_trip(tmp_path: Path) -> None:
    code = bb72()
    save_code(code, tmp_path / "bb.npz")
    loaded = load_code(tmp_path / "bb.npz")
    assert loaded.name == "bb72" and (loaded.n, loaded.k) == (72, 12)
    np.testing.assert_array_equal(loaded.hx, code.hx)
    np.testing.assert_array_equal(loaded.hz, code.hz)
    assert load_code(tmp_path / "bb.npz", name="mine").name == "mine"
    np.savez(tmp_path / "plain.npz", hx=code.hx.astype(np.int64), hz=code.hz.astype(bool))
    assert load_code(tmp_path / "plain.npz").name == "plain"


def test_alist_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    matrices = [hamming(3), reed_muller(1, 4), random_regular_ldpc(20, 3, 4, 1)]
    matrices.append((rng.random((5, 9)) < 0.4).astype(np.uint8))
    matrices[-1][:, 2] = 0  # an empty column
    matrices[-1][0, 0] = 1
    for index, h in enumerate(matrices):
        path = tmp_path / f"h{index}.alist"
        write_alist(path, h)
        np.testing.assert_array_equal(read_alist(path), h)
    lines = (tmp_path / "h0.alist").read_text().splitlines()
    assert lines[:4] == ["7 3", "3 4", "1 1 2 1 2 2 3", "4 4 4"]
    assert lines[4] == "1 0 0" and lines[-1] == "4 5 6 7"


def test_alist_unpadded_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "h.alist"
    path.write_text("3 2\n2 2\n\n1 2 1\n2 2\n1\n1 2\n2\n1 2\n2 3\n")
    np.testing.assert_array_equal(read_alist(path), [[1, 1, 0], [0, 1, 1]])


def test_load_alist_codes(tmp_path: Path) -> None:
    code = toric(3)
    write_alist(tmp_path / "hx.alist", code.hx)
    write_alist(tmp_path / "hz.alist", code.hz)
    pair = load_code(tmp_path / "hx.alist", hz=tmp_path / "hz.alist")
    assert pair.name == "hx" and (pair.n, pair.k) == (18, 2)
    write_alist(tmp_path / "ham.alist", hamming(3))
    product = load_code(tmp_path / "ham.alist", hgp=True)
    assert product.name == "hgp:ham" and (product.n, product.k) == (58, 16)
    np.testing.assert_array_equal(product.hx, named_code("hgp:hamming:3").hx)


GOOD = ["3 2", "2 2", "1 2 1", "2 2", "1 0", "1 2", "2 0", "1 2", "2 3"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({0: "3"}, "line 1: expected 2 values"),
        ({0: "3 x"}, "line 1: expected integers"),
        ({2: "1 2 2"}, "lines 3-4: column weights sum to 5 but row weights to 4"),
        ({2: "1 3 1"}, "line 3: column 2 has weight 3, outside 0..2"),
        ({4: "1 2"}, "line 5: column 1 is declared with weight 1 but lists '1 2'"),
        ({5: "1 3"}, "line 6: column 2 lists index 3, outside 1..2"),
        ({5: "1 1"}, "line 6: column 2 repeats an index"),
        ({4: "0 1"}, "line 5: column 1 is declared with weight 1 but lists '0 1'"),
        ({8: "1 3"}, r"line 9: row 2 lists column 1, but column 1's list \(line 5\) lacks row 2"),
        ({6: "1 0"}, r"line 7: column 3 lists row 1, but row 1's list \(line 8\) lacks column 3"),
        ({9: "7"}, "line 10: unexpected content after the 2 row lists"),
        ({8: ""}, "file ends after line 8; expected the index list of row 2"),
    ],
)
def test_alist_errors(tmp_path: Path, edit: dict[int, str], message: str) -> None:
    lines = [*GOOD, ""]
    for index, text in edit.items():
        lines[index] = text
    path = tmp_path / "bad.alist"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CodeError, match=f"^{re.escape(str(path))}: .*{message}"):
        read_alist(path)


def test_file_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.alist"
    write_alist(good, hamming(3))
    with pytest.raises(
        CodeError, match=re.escape("unknown code file type '.txt'; expected .npz or .alist")
    ):
        load_code(tmp_path / "code.txt")
    with pytest.raises(CodeError, match=re.escape("an alist file holds one matrix; pass hz=")):
        load_code(good)
    with pytest.raises(CodeError, match=r"either hz= .* or hgp=True, not both"):
        load_code(good, hz=good, hgp=True)
    with pytest.raises(CodeError, match="cannot read alist file"):
        read_alist(tmp_path / "missing.alist")
    # a CSS pair that does not commute: the CSSCode message, prefixed with the paths
    write_alist(tmp_path / "z.alist", np.eye(7, dtype=np.uint8)[:1])
    with pytest.raises(CodeError, match=r"good\.alist \+ .*z\.alist: the checks do not commute"):
        load_code(good, hz=tmp_path / "z.alist")

    npz = tmp_path / "code.npz"
    np.savez(npz, hx=np.array([[1, 2]]), hz=np.array([[1, 1]]))
    with pytest.raises(
        CodeError,
        match=f"^{re.escape(str(npz))}: hx must be binary \\(0/1\\); entry \\(0, 1\\) is ",
    ):
        load_code(npz)
    np.savez(npz, hx=np.array([[1, 1]]))
    with pytest.raises(CodeError, match=r"missing array\(s\) hz; .*found: hx"):
        load_code(npz)
    np.savez(npz, hx=np.array([[1, 0]]), hz=np.array([[1, 1]]))
    with pytest.raises(CodeError, match=f"^{re.escape(str(npz))}: the checks do not commute"):
        load_code(npz)
    np.savez(npz, hx=np.array([[1, 1]]), hz=np.array([[1, 1]]), name=np.array([1]))
    with pytest.raises(CodeError, match="'name' must be a string"):
        load_code(npz)
    with pytest.raises(CodeError, match="hz= and hgp= are for alist files"):
        load_code(npz, hgp=True)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(CodeError, match=re.escape("junk.npz: not an .npz archive")):
        load_code(tmp_path / "junk.npz")
    with pytest.raises(CodeError, match=re.escape("saved as .npz; got suffix '.np'")):
        save_code(steane(), tmp_path / "x.np")
    with pytest.raises(CodeError, match="alist matrix must be binary"):
        write_alist(tmp_path / "x.alist", np.array([[2]]))
