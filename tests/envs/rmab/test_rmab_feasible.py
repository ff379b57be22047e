"""The three views of each coRMAB feasible set (rules, MILP, sampler) against each other and
against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from rlsuite.envs.rmab import families
from rlsuite.envs.rmab.instances import FAMILIES, Instance, generate
from rlsuite.envs.rmab.milp import InfeasibleError

pytest.importorskip("highspy")
pytest.importorskip("pyscipopt")

CPU = torch.device("cpu")
SIZES = [(20, 5), (40, 10), (100, 20)]


def feasible_mask(inst: Instance, X: np.ndarray) -> np.ndarray:
    """The rule-by-rule check on many actions of one instance."""
    S = families.structure_tensors([inst], CPU)
    out = []
    for chunk in np.array_split(X, max(1, len(X) // 65536)):
        S_n = {k: v.expand(len(chunk), *v.shape[1:]) for k, v in S.items()}
        broken = families.violations(inst.family, inst.budget, torch.as_tensor(chunk), S_n)
        out.append(~torch.stack(list(broken.values())).any(0).numpy())
    return np.concatenate(out)


def tiny(family: str, seed: int) -> Instance:
    """Instances small enough to enumerate every binary action (≤ 16 entries)."""
    if family == "path":
        return generate("path", 4 - seed % 2, 1, seed, num_edges=3)  # a tree, or a triangle
    if family == "scheduling":
        return generate("scheduling", 3, 2, seed)
    if family == "capacity":
        return generate("capacity", 4, 3, seed)
    if family == "interventions":
        return generate("interventions", 6, 3, seed, num_interventions=8)
    return generate("budget", 6, 3, seed)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_milp_rules_and_enumeration_agree(family: str, seed: int) -> None:
    inst = tiny(family, seed)
    dim = families.action_dim(inst)
    assert dim <= 16
    X = np.array(list(itertools.product((0.0, 1.0), repeat=dim)))
    by_rules = feasible_mask(inst, X)
    milp = families.feasible_milp(inst)
    ax = milp.A @ X.T
    by_milp = (
        (ax >= milp.row_lower[:, None] - 1e-9).all(0)
        & (ax <= milp.row_upper[:, None] + 1e-9).all(0)
        & (X <= milp.upper).all(1)
        & (X >= milp.lower).all(1)
    )
    np.testing.assert_array_equal(by_rules, by_milp)
    assert by_rules.sum() > 1
    feasible = X[by_rules]
    rng = np.random.default_rng(seed)
    for _ in range(3):
        c = rng.normal(size=dim)
        best = (feasible @ c).max()
        for backend in ("highs", "scip"):
            x = milp.solve(c, backend=backend)
            assert feasible_mask(inst, x[None])[0]
            assert x @ c == pytest.approx(best, abs=1e-9)
    # the sampler only produces feasible actions and reaches several of them
    samples = np.stack([families.sample(inst, rng) for _ in range(300)])
    assert feasible_mask(inst, samples).all()
    assert len({tuple(s) for s in samples}) > 1


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", SIZES[:1])
def test_sampled_actions_are_feasible(family: str, size: tuple[int, int]) -> None:
    inst = generate(family, *size, seed=3)
    rng = np.random.default_rng(0)
    X = np.stack([families.sample(inst, rng) for _ in range(1000)])
    assert feasible_mask(inst, X).all()
    milp = families.feasible_milp(inst)
    assert all(milp.satisfied_by(x) for x in X[:100])


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", SIZES[1:])
def test_sampled_actions_are_feasible_at_every_size(family: str, size: tuple[int, int]) -> None:
    test_sampled_actions_are_feasible(family, size)


def test_rules_catch_each_kind_of_violation() -> None:
    inst = generate("path", 20, 5, seed=0)
    x = families.sample(inst, np.random.default_rng(0))
    J = inst.num_arms

    def broken(action: np.ndarray) -> set[str]:
        S = families.structure_tensors([inst], CPU)
        out = families.violations("path", 5, torch.as_tensor(action[None]), S)
        return {k for k, v in out.items() if bool(v[0])}

    assert broken(x) == set()
    E = len(inst.structure["edges"])
    steps = x[J:].reshape(10, 2 * E).argmax(1)
    heads = np.concatenate([inst.structure["edges"][:, 1], inst.structure["edges"][:, 0]])[steps]
    unvisited = sorted(set(range(J)) - set(heads.tolist()))[0]
    y = x.copy()
    y[unvisited] = 1
    assert "pulls_visited" in broken(y)
    y = x.copy()
    y[J:] = 0
    assert "one_edge_per_step" in broken(y)
    y = x.copy()
    y[0] = 0.5
    assert "binary" in broken(y)


@pytest.mark.parametrize("backend", ["highs", "scip"])
def test_time_limited_solves_keep_the_starting_incumbent(backend: str) -> None:
    """A path orienteering program too large to finish in 0.05 s: the solve returns a feasible
    action at least as good as the start it was given, and says it is not proven optimal."""
    inst = generate("path", 100, 20, seed=0)
    milp = families.feasible_milp(inst)
    start = families.sample(inst, np.random.default_rng(0))
    c = np.zeros(milp.num_vars)
    c[: inst.num_arms] = np.random.default_rng(1).random(inst.num_arms)
    x, optimal = milp.optimize(c, backend=backend, time_limit=0.05, start=start)
    assert not optimal
    assert feasible_mask(inst, x[None])[0] and c @ x >= c @ start - 1e-9
    with pytest.raises(InfeasibleError, match=r"(?i)time ?limit"):
        milp.solve(c, backend=backend, time_limit=0.05)


def test_milp_errors_name_the_problem() -> None:
    inst = generate("budget", 6, 2, seed=0)
    milp = families.feasible_milp(inst)
    with pytest.raises(ValueError, match=r"objective must have shape \(6,\)"):
        milp.solve(np.zeros(5))
    with pytest.raises(ValueError, match="unknown MILP backend 'gurobi'"):
        milp.solve(np.zeros(6), backend="gurobi")
    with pytest.raises(ValueError, match="start must be a feasible point"):
        milp.optimize(np.zeros(6), start=np.ones(6))
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        milp.optimize(np.zeros(6), time_limit=0)
    empty = milp.with_bounds(np.ones(6), np.ones(6))  # pull all 6 arms: more than B = 2
    for backend in ("highs", "scip"):
        with pytest.raises(InfeasibleError, match="no feasible point"):
            empty.solve(np.zeros(6), backend=backend)
