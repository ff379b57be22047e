"""GF(2) linear algebra against galois, the distance estimate against exact distances, and the
hypergraph-product formulas against qldpc's HGPCode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rlsuite.envs.qcode import gf2
from rlsuite.envs.qcode.css import CSSCode
from rlsuite.envs.qcode.distance import classical_distance, estimate_distance, exact_distance
from rlsuite.envs.qcode.product import hgp_parameters

galois = pytest.importorskip("galois")
GF2 = galois.GF(2)

matrices = st.integers(1, 8).flatmap(
    lambda m: st.integers(1, 10).flatmap(
        lambda n: arrays(np.uint8, (m, n), elements=st.integers(0, 1))
    )
)


@settings(max_examples=200, deadline=None)
@given(H=matrices, seed=st.integers(0, 2**31))
def test_rank_kernel_and_row_space_agree_with_galois(H: np.ndarray, seed: int) -> None:
    r = int(np.linalg.matrix_rank(GF2(H)))
    assert gf2.rank(H) == r
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(H.shape[1]))[None]
    for columns in (None, perm):
        basis, valid = gf2.kernel(H, columns=columns)
        rows = basis[0][valid[0]].numpy().astype(np.uint8)
        assert rows.shape[0] == H.shape[1] - r
        assert not ((H.astype(int) @ rows.T.astype(int)) % 2).any()
        if rows.shape[0]:
            assert int(np.linalg.matrix_rank(GF2(rows))) == rows.shape[0]
    v = np.random.default_rng(seed).integers(0, 2, size=(4, H.shape[1])).astype(np.uint8)
    inside = gf2.in_row_space(torch.as_tensor(v, dtype=torch.bool)[None], gf2.row_reduce(H))[0]
    for vector, claimed in zip(v, inside.tolist(), strict=True):
        assert claimed == (int(np.linalg.matrix_rank(GF2(np.vstack([H, vector])))) == r)


def test_a_batch_with_padding_matches_each_matrix_alone() -> None:
    rng = np.random.default_rng(0)
    mats = [rng.integers(0, 2, size=(rng.integers(2, 6), 9)).astype(np.uint8) for _ in range(6)]
    padded = np.zeros((6, 6, 9), dtype=np.uint8)
    for i, m in enumerate(mats):
        padded[i, : m.shape[0]] = m
    np.testing.assert_array_equal(
        gf2.rank(torch.as_tensor(padded)).numpy(), [gf2.rank(m) for m in mats]
    )
    with pytest.raises(ValueError, match="entries 0 or 1"):
        gf2.rank(np.array([[0, 2]]))


def test_classical_distances_of_known_codes() -> None:
    hamming = np.array([[int(b) for b in f"{c:03b}"] for c in range(1, 8)]).T
    assert classical_distance(hamming) == 3.0
    assert classical_distance(np.array([[1, 1, 0], [0, 1, 1]])) == 3.0  # repetition
    assert classical_distance(np.eye(3, dtype=int)) == float("inf")  # k = 0


def _steane() -> CSSCode:
    h = np.array([[1, 0, 0, 1, 0, 1, 1], [0, 1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 1, 1]])
    return CSSCode(h, h, "steane")


def test_estimate_is_an_upper_bound_and_exact_on_steane_and_a_batch() -> None:
    pytest.importorskip("qldpc")
    from qldpc import codes as Q

    cases = [_steane()]
    for L in (3, 4):
        c = Q.ToricCode(L, rotated=False)
        cases.append(CSSCode(np.asarray(c.matrix_x), np.asarray(c.matrix_z), f"toric{L}"))
    c = Q.HGPCode(Q.HammingCode(3))
    cases.append(CSSCode(np.asarray(c.matrix_x), np.asarray(c.matrix_z), "hgp-hamming"))
    n = max(code.n for code in cases)
    mx = max(code.hx.shape[0] for code in cases)
    mz = max(code.hz.shape[0] for code in cases)
    hx = torch.zeros(len(cases), mx, n, dtype=torch.bool)
    hz = torch.zeros(len(cases), mz, n, dtype=torch.bool)
    for i, code in enumerate(cases):
        hx[i, : code.hx.shape[0], : code.n] = torch.as_tensor(code.hx, dtype=torch.bool)
        hz[i, : code.hz.shape[0], : code.n] = torch.as_tensor(code.hz, dtype=torch.bool)
    qubits = torch.tensor([code.n for code in cases])
    g = torch.Generator().manual_seed(0)
    batched = estimate_distance(hx, hz, num_qubits=qubits, trials=48, generator=g)
    exact = [exact_distance(code) for code in cases]
    assert exact == [3, 3, 4, 3]
    np.testing.assert_array_equal(batched.numpy(), exact)
    # few trials can only overestimate
    rough = estimate_distance(hx, hz, num_qubits=qubits, trials=1, generator=g)
    assert (rough.numpy() >= np.array(exact)).all()


def test_hypergraph_product_formulas_agree_with_qldpc() -> None:
    pytest.importorskip("qldpc")
    from qldpc import codes as Q

    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(25):
        m1, n1, m2, n2 = rng.integers(2, 6, 4)
        h1 = (rng.random((m1, n1)) < 0.4).astype(np.uint8)
        h2 = (rng.random((m2, n2)) < 0.4).astype(np.uint8)
        h1[~h1.any(1), 0] = 1
        h2[~h2.any(1), 0] = 1
        code = Q.HGPCode(Q.ClassicalCode(h1), Q.ClassicalCode(h2))
        p = hgp_parameters(torch.as_tensor(h1)[None], torch.as_tensor(h2)[None])
        hx, hz = np.asarray(code.matrix_x), np.asarray(code.matrix_z)
        assert int(p.num_qubits[0]) == code.num_qubits and int(p.dimension[0]) == code.dimension
        assert int(p.max_check_weight[0]) == max(hx.sum(1).max(), hz.sum(1).max())
        assert int(p.max_qubit_degree[0]) == max(hx.sum(0).max(), hz.sum(0).max())
        if code.dimension:
            assert float(p.distance[0]) == code.get_distance_exact()
            checked += 1
    assert checked >= 10


def test_estimate_equals_exact_on_bb72_and_the_toric_code_of_side_six() -> None:
    pytest.importorskip("qldpc")
    from rlsuite.envs.qcode.codes import named_code

    g = torch.Generator().manual_seed(1)
    for name, d in (("bb72", 6), ("toric:6", 6)):
        code = named_code(name)
        assert exact_distance(code) == d
        assert float(estimate_distance(code.hx, code.hz, trials=32, generator=g)[0]) == d


def _torch_row_reduce(H: torch.Tensor, columns: torch.Tensor | None) -> gf2.RowEchelon:
    return gf2._row_reduce_torch(gf2.pack(H), columns, H.shape[2])


def test_the_numpy_elimination_equals_the_torch_one_step_for_step() -> None:
    """On CPU, row_reduce and in_row_space run in numpy; other devices use the torch loops.
    Both give the same echelon (pivots, row order) and the same row-space answers."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        B, m, n = 3, int(rng.integers(1, 40)), int(rng.integers(1, 150))
        H = torch.as_tensor(rng.random((B, m, n)) < rng.uniform(0.02, 0.5))
        columns = torch.stack([torch.randperm(n) for _ in range(B)])
        for order in (None, columns):
            fast, slow = gf2.row_reduce(H, order), _torch_row_reduce(H, order)
            for a, b in zip(fast, slow, strict=True):
                assert torch.equal(a, b)
        echelon = gf2.row_reduce(H)
        vectors = torch.as_tensor(rng.random((B, 7, n)) < 0.3)
        vectors[:, 0] = H[:, 0] ^ H[:, -1]  # in the row space
        assert torch.equal(
            gf2.in_row_space(vectors, echelon), gf2._in_row_space_torch(vectors, echelon)
        )


def _reference_estimate(hx, hz, num_qubits, trials, keys) -> torch.Tensor:
    """The estimate as first written: each side on its own, every kernel vector tested."""
    from rlsuite.envs.qcode.distance import _orders

    from rlsuite import keyed_random

    def side(checks, stabilisers, side_keys):
        order = _orders(num_qubits, checks.shape[2], trials, None, side_keys)
        rep = lambda t: t.repeat_interleave(trials, dim=0)  # noqa: E731
        basis, valid = gf2.kernel(rep(checks), rep(num_qubits), columns=order)
        echelon = _torch_row_reduce(rep(stabilisers), None)
        logical = valid & ~gf2._in_row_space_torch(basis, echelon)
        weight = torch.where(logical, basis.sum(-1).double(), float("inf"))
        return weight.reshape(checks.shape[0], -1).amin(1)

    return torch.minimum(side(hz, hx, keys), side(hx, hz, keyed_random.combine(keys, 1)))


@pytest.mark.parametrize("name", ["toric:3", "hgp:hamming:3", "steane"])
def test_the_estimate_equals_the_reference_on_grown_codes(name: str) -> None:
    """Random weight-reduction moves (codes of up to a few hundred qubits, batched with padding):
    the one-pass estimate gives exactly the per-side reference's values."""
    from rlsuite.envs.qcode import moves
    from rlsuite.envs.qcode.codes import named_code

    rng = np.random.default_rng(1)
    codes = [named_code(name)]
    for _ in range(5):
        code = codes[-1]
        options = [
            mv
            for mv in moves.useful_moves(code, max_qubits=400, max_checks=400)
            if mv.kind != "cone"
        ]
        if not options:
            break
        codes.append(moves.apply_move(code, options[int(rng.integers(len(options)))]))
    n = max(c.n for c in codes)
    m = max(max(c.hx.shape[0], c.hz.shape[0]) for c in codes)
    hx = torch.zeros(len(codes), m, n, dtype=torch.bool)
    hz = torch.zeros(len(codes), m, n, dtype=torch.bool)
    for i, c in enumerate(codes):
        hx[i, : c.hx.shape[0], : c.n] = torch.as_tensor(np.array(c.hx, dtype=bool))
        hz[i, : c.hz.shape[0], : c.n] = torch.as_tensor(np.array(c.hz, dtype=bool))
    qubits = torch.tensor([c.n for c in codes])
    keys = torch.arange(len(codes), dtype=torch.int64) * 7919 + 3
    for trials in (1, 4):
        fast = estimate_distance(hx, hz, num_qubits=qubits, trials=trials, keys=keys)
        assert torch.equal(fast, _reference_estimate(hx, hz, qubits, trials, keys))
