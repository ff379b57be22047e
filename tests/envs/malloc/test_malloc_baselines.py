"""The mallocGame baselines against exhaustive search, a MIP (SCIP) and answers known by
construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from layout_checks import check_final_layout, fraction_of_time_saved
from rlsuite.envs.malloc import baselines
from rlsuite.envs.malloc.generators import random_instance, tight_instance
from rlsuite.envs.malloc.instances import HardwareProfile, Instance, load_instance
from rlsuite.envs.malloc.vector import MallocGameVectorEnv, MallocPackVectorEnv

# compute-free operations and a fast memory 10^6 × faster: a buffer's benefit ≈ its bytes moved
BYTES_ARE_SECONDS = HardwareProfile("toy", 1.0, 1.0, 1e6)


def greedy_trap(path: Path) -> Path:
    """A (200 B, moves 170 B) arrives before B and C (100 B each, 100 B moved): A has the larger
    benefit / sqrt(size), but with 200 B of fast memory B + C save more than A."""
    path.write_text("id,lower,upper,size,uses\n0,0,3,200,0:170\n1,0,3,100,1\n2,0,3,100,2\n")
    return path


def test_exhaustive_search_beats_the_greedy_trap(tmp_path: Path) -> None:
    inst = load_instance(greedy_trap(tmp_path / "trap.csv"), hardware=BYTES_ARE_SECONDS)
    np.testing.assert_array_equal(inst.mapping_order(), [0, 1, 2])
    env = MallocGameVectorEnv(instance=inst, capacity=200)
    best_fit = baselines.episode_results(
        "best-fit", lambda n: MallocGameVectorEnv(n, instance=inst, capacity=200), [0]
    )
    assert best_fit.metrics["time_saved"][0] == pytest.approx(170 / 370, rel=1e-5)
    env.reset(seed=0)
    best, actions = baselines.exhaustive_search(env)
    assert best == pytest.approx(200 / 370, rel=1e-5)
    assert actions == [0, 1, 1]  # A slow, B at the first (only) candidate, C at its own
    assert replay(env, actions) == pytest.approx(best, abs=1e-6)
    np.testing.assert_array_equal(env.buffer_offsets(0), [-1, 0, 100])


def replay(env: MallocGameVectorEnv | MallocPackVectorEnv, actions: list[int]) -> float:
    env.reset(seed=0)
    total = 0.0
    for action in actions:
        _, reward, *_ = env.step(np.array([action]))
        total += float(reward[0])
    return total


def scip_optimum(inst: Instance, capacity: float) -> float:
    """The true optimum of the mapping problem (any offsets, not just the game's candidates):
    fast flags f_b, offsets o_b, one ordering binary per direction of each time-overlapping
    pair, and op times τ_t ≥ compute_t, τ_t ≥ slow memory time_t − Σ savings of fast uses.
    Times are in units of 1/1000 of the all-slow time (SCIP's tolerances are absolute, 1e-6);
    bytes in units of the capacity."""
    pyscipopt = pytest.importorskip("pyscipopt")
    model = pyscipopt.Model()
    model.hideOutput()
    n = inst.num_buffers
    size = inst.size / capacity
    big = 1.0 + float(size.max())  # any offset + size is below this
    f = [model.addVar(vtype="B") for _ in range(n)]
    o = [model.addVar(lb=0.0, ub=max(0.0, 1.0 - float(size[b]))) for b in range(n)]
    for b in range(n):
        if size[b] > 1.0:
            model.addCons(f[b] == 0)
    for a in range(n):
        for b in range(a):
            if inst.lower[a] < inst.upper[b] and inst.lower[b] < inst.upper[a]:
                below, above = model.addVar(vtype="B"), model.addVar(vtype="B")
                model.addCons(o[a] + size[a] <= o[b] + big * (1 - below))
                model.addCons(o[b] + size[b] <= o[a] + big * (1 - above))
                model.addCons(below + above >= f[a] + f[b] - 1)
    unit = inst.slow_time / 1000.0
    compute = inst.compute_time / unit
    slow = inst.memory_time(np.zeros(n, dtype=bool)) / unit
    saving, owner = inst.use_saving / unit, inst.use_buffer
    tau = []
    for t in range(inst.num_ops):
        v = model.addVar(lb=float(compute[t]))
        uses = np.flatnonzero(inst.use_op == t)
        model.addCons(
            v >= float(slow[t]) - pyscipopt.quicksum(float(saving[u]) * f[owner[u]] for u in uses)
        )
        tau.append(v)
    model.setObjective(pyscipopt.quicksum(tau), "minimize")
    model.optimize()
    return (1000.0 - model.getObjVal()) / 1000.0


@pytest.mark.parametrize("seed", range(8))
def test_tiny_mapping_optimum_bounds_the_policies(seed: int) -> None:
    """≤ 10 buffers: exhaustive ≥ best fit, first fit and 200 random rollouts; ≤ the MIP's
    true optimum; and its action sequence replays to its value."""
    inst = random_instance(9, 4, seed=seed)

    def make(n: int) -> MallocGameVectorEnv:
        return MallocGameVectorEnv(n, instance=inst, capacity_fraction=0.4)

    env = make(1)
    env.reset(seed=0)
    best, actions = baselines.exhaustive_search(env)
    assert replay(make(1), actions) == pytest.approx(best, abs=1e-6)
    for name in ("best-fit", "first-fit"):
        assert baselines.episode_results(name, make, [0]).metrics["time_saved"][0] <= best + 1e-12
    random = baselines.episode_results("random", make, list(range(200))).metrics["time_saved"]
    assert random.max() <= best + 1e-12
    true_optimum = scip_optimum(inst, env.fast_capacity(inst))
    assert best <= true_optimum + 1e-7


def test_the_game_reaches_the_mip_optimum_on_most_tiny_instances() -> None:
    reached = 0
    for seed in range(10):
        inst = random_instance(8, 3, seed=100 + seed)
        env = MallocGameVectorEnv(instance=inst, capacity_fraction=0.5)
        env.reset(seed=0)
        best, _ = baselines.exhaustive_search(env)
        reached += best >= scip_optimum(inst, env.fast_capacity(inst)) - 1e-7
    assert reached >= 9  # all 10 at the time of writing


@pytest.mark.parametrize("seed", range(6))
def test_packing_tight_instances(seed: int) -> None:
    """Optimal height = C by construction; best fit ≥ exhaustive ≥ C over the game's moves."""
    inst, _ = tight_instance(9, 6, seed, capacity=1 << 12)

    def make(n: int) -> MallocPackVectorEnv:
        return MallocPackVectorEnv(n, instance=inst)

    env = make(1)
    env.reset(seed=0)
    best, actions = baselines.exhaustive_search(env)
    assert replay(make(1), actions) == pytest.approx(best, abs=1e-6)
    ratio = baselines.episode_results("best-fit", make, [0]).metrics["height_ratio"][0]
    assert 1.0 <= -best <= ratio + 1e-12
    randoms = baselines.episode_results("random", make, list(range(100))).metrics["height_ratio"]
    assert randoms.min() >= -best - 1e-12


def test_best_fit_on_a_real_program_beats_random_and_is_valid() -> None:
    inst = load_instance("resnet18-train-b8-r224")

    def make(n: int) -> MallocGameVectorEnv:
        return MallocGameVectorEnv(n, instance=inst)

    env = make(1)
    results = baselines.run_agent_episodes(baselines.Baseline("best-fit", env), env, [0])
    offsets = env.buffer_offsets(0)
    check_final_layout(inst, offsets, env.fast_capacity(inst))
    saved = results.metrics["time_saved"][0]
    assert saved == pytest.approx(fraction_of_time_saved(inst, offsets), rel=1e-9)
    random = baselines.episode_results("random", make, list(range(8))).metrics["time_saved"]
    assert saved > random.max() > 0.0


def test_unknown_baseline_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown mallocGame baseline 'greedy'"):
        baselines.Baseline("greedy", MallocGameVectorEnv())
    with pytest.raises(ValueError, match="mapping game only"):
        baselines.Baseline("slow", MallocPackVectorEnv())


@pytest.mark.parametrize("env_id", ["rlsuite/MallocGame-v0", "rlsuite/MallocPack-v0"])
def test_exhaustive_search_takes_single_unwrapped_and_batched_envs(env_id: str) -> None:
    """``gymnasium.make``'s wrapped env, its ``unwrapped`` and the batched env give one answer."""
    import gymnasium as gym

    import rlsuite  # noqa: F401 - registers the ids

    kwargs = {"num_buffers": 8, "num_ops": 3, "instance_seed": 5}
    single = gym.make(env_id, **kwargs)
    batched = gym.make_vec(env_id, 2, vectorization_mode="vector_entry_point", **kwargs)
    single.reset(seed=0)
    batched.reset(seed=0)
    answers = [baselines.exhaustive_search(env) for env in (single, single.unwrapped, batched)] + [
        baselines.exhaustive_search(batched.unwrapped, index=1)
    ]
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0][1] and replay(single.unwrapped.core, answers[0][1]) == pytest.approx(
        answers[0][0], abs=1e-6
    )
    with pytest.raises(TypeError, match="mallocGame env"):
        baselines.exhaustive_search(gym.make("rlsuite/SOR-ShiftedLaplacian-v0"))
