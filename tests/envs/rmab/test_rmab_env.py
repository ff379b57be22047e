"""The coRMAB environments: gymnasium contract, seeding, batch == single, transition
frequencies, projection, and clear errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import reference_model as ref
import scipy.stats
import torch
from gymnasium.utils.env_checker import check_env
from rlsuite.envs.rmab.instances import FAMILIES, generate, load_instance, save_instance
from rlsuite.envs.rmab.vector import CoRMABVectorEnv

import rlsuite  # noqa: F401 - registers the ids

IDS = [
    f"rlsuite/CoRMAB-{n}-v0" for n in ("Budget", "Interventions", "Path", "Scheduling", "Capacity")
]


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_and_random_feasible_episode(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        action = env.action_space.sample()
        assert env.unwrapped.is_feasible(action)
        assert env.unwrapped.feasible_set().satisfied_by(action)
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs.shape == (21,) and not terminated
        assert reward == info["expected_reward"]
    assert truncated and obs[-1] == 0.0


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_instance_and_trajectory(family: str) -> None:
    a, b = generate(family, 20, 5, seed=7), generate(family, 20, 5, seed=7)
    for key in ("p_passive", "p_active", "rewards"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    for key in a.structure:
        np.testing.assert_array_equal(a.structure[key], b.structure[key])
    assert not np.array_equal(generate(family, 20, 5, seed=8).p_active, a.p_active)

    def run() -> list[np.ndarray]:
        env = CoRMABVectorEnv(3, family=family, instance_seed=None, reward="sampled")
        obs, _ = env.reset(seed=11)
        rng = np.random.default_rng(0)
        out = [obs.numpy()]
        for _ in range(25):  # crosses an autoreset
            obs, reward, *_ = env.step(np.stack([env.sample_feasible(rng, i) for i in range(3)]))
            out += [obs.numpy(), reward.numpy()]
        return out

    for x, y in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_core_equals_single_envs(family: str) -> None:
    n, seed = 4, 20
    vec = CoRMABVectorEnv(n, family=family, instance_seed=None)
    obs, _ = vec.reset(seed=seed)
    singles = [gym.make(IDS[FAMILIES.index(family)], instance_seed=None) for _ in range(n)]
    single_obs = [s.reset(seed=seed + i)[0] for i, s in enumerate(singles)]
    np.testing.assert_allclose(obs.numpy(), np.stack(single_obs))
    rng = np.random.default_rng(1)
    for _ in range(10):
        actions = np.stack([vec.sample_feasible(rng, i) for i in range(n)])
        obs, reward, *_ = vec.step(actions)
        for i, s in enumerate(singles):
            assert s.unwrapped.instance is not None
            o, r, *_ = s.step(actions[i])
            np.testing.assert_allclose(o, obs[i].numpy())
            assert r == pytest.approx(float(reward[i]), abs=1e-12)


#: the per-cell level of the binomial tests below: a correct env fails a given cell with
#: probability below 1e-6 (two-sided), the whole test with a few 1e-4 at most
LEVEL = 1e-6


@pytest.mark.parametrize("family", FAMILIES)
def test_transitions_and_rewards_match_the_reference_model(family: str) -> None:
    """The env against :mod:`reference_model` (the paper's equations, no env code): 2000 envs
    play 4 random feasible actions from every start state, 48 steps. Each cell (action, start
    state, arm) gets 6000 transitions; its number of up-moves must pass an exact two-sided
    binomial test at level 1e-6 against the reference probability - a band of about ±5
    standard errors, ±0.006 at p = 0.01, so a change of 0.04 in p (e.g. the interventions
    floor 0.01 → 0.05) cannot pass. Every move is to the reference's up or down state, and the
    expected and sampled rewards equal the reference's on every step."""
    n, steps, K = 2000, 48, 4
    env = CoRMABVectorEnv(n, family=family, horizon=1000)
    env.reset(seed=0)
    inst, J = env.instance(0), env.num_arms
    actions = [env.sample_feasible(np.random.default_rng(k), 0) for k in range(K)]
    which = np.arange(n) % K
    p_ref = np.stack([ref.up_probability(inst, ref.arm_input(inst, a)) for a in actions])
    p = p_ref[which]  # (n, J)
    arms = np.arange(J)
    ups = np.zeros(K * ref.STATES * J, dtype=np.int64)  # cells (action, start state, arm)
    counts = np.zeros_like(ups)
    reward_error = 0.0  # the largest difference of a reward from the reference's, any step
    for t in range(steps):
        start = (np.arange(n)[:, None] + arms[None, :] + t) % ref.STATES
        env.states = torch.as_tensor(start)
        _, _, _, _, info = env.step(np.stack([actions[k] for k in which]))
        after = env.states.numpy()
        up, down = ref.successors(start)
        assert np.all((after == up) | (after == down))
        expected = (p * inst.rewards[arms, up] + (1 - p) * inst.rewards[arms, down]).sum(1)
        sampled = inst.rewards[arms, after].sum(1)
        reward_error = max(
            reward_error,
            np.abs(info["expected_reward"].numpy() - expected).max(),
            np.abs(info["sampled_reward"].numpy() - sampled).max(),
        )
        cell = ((which[:, None] * ref.STATES + start) * J + arms[None, :]).ravel()
        ups += np.bincount(cell, weights=(after == up).ravel(), minlength=len(ups)).astype(np.int64)
        counts += np.bincount(cell, minlength=len(ups))
    assert np.all(counts == n * steps // (K * ref.STATES))
    q = np.broadcast_to(p_ref[:, None, :], (K, ref.STATES, J)).ravel()
    # two-sided p-value of the exact binomial test: twice the smaller tail
    pvalues = np.minimum(
        1.0,
        2
        * np.minimum(
            scipy.stats.binom.cdf(ups, counts, q), scipy.stats.binom.sf(ups - 1, counts, q)
        ),
    )
    worst = int(np.argmin(pvalues))
    action, state, arm = np.unravel_index(worst, (K, ref.STATES, J))
    assert pvalues[worst] >= LEVEL, (
        f"action {action}, start state {state}, arm {arm}: {ups[worst]} up-moves of "
        f"{counts[worst]}, reference p = {q[worst]:.4f}, p-value {pvalues[worst]:.1e}"
    )
    assert len(np.unique(p_ref.round(3))) > 2  # several distinct probabilities checked
    assert reward_error <= 1e-12, reward_error


@pytest.mark.parametrize("q", [0.2, 0.5])
def test_initial_states_match_the_reference(q: float) -> None:
    """Each arm starts in state 1 with probability q, else 0: 40,000 arm draws, a two-sided
    binomial test at level 1e-6."""
    env = CoRMABVectorEnv(2000, family="budget", initial_state_prob=q)
    env.reset(seed=0)
    states = env.states.numpy()
    assert set(np.unique(states)) <= {0, 1}
    ones = int(states.sum())
    assert scipy.stats.binomtest(ones, states.size, q).pvalue >= LEVEL, (ones, states.size, q)


def test_expected_reward_is_the_mean_of_the_sampled_one() -> None:
    env = CoRMABVectorEnv(4000, family="capacity")
    env.reset(seed=0)
    action = np.stack([env.sample_feasible(np.random.default_rng(0), 0)] * 4000)
    _, _, _, _, info = env.step(action)
    expected, sampled = info["expected_reward"], info["sampled_reward"]
    se = sampled.std() / np.sqrt(4000)
    assert abs(float(sampled.mean() - expected.mean())) < 4 * float(se)


def test_infeasible_actions_raise_or_are_projected() -> None:
    env = gym.make("rlsuite/CoRMAB-Capacity-v0")
    env.reset(seed=0)
    dim = env.action_space.n
    with pytest.raises(ValueError, match="within_capacity"):
        env.step(np.ones(dim))
    with pytest.raises(ValueError, match=r"shape \(120,\)"):
        env.step(np.ones(7))
    with pytest.raises(ValueError, match="0 or 1"):
        env.step(np.full(dim, 0.5))
    proj = gym.make("rlsuite/CoRMAB-Capacity-v0", infeasible="project")
    proj.reset(seed=0)
    _, _, _, _, info = proj.step(np.ones(dim))
    assert info["projected"]
    feasible = proj.unwrapped.sample_feasible(np.random.default_rng(0))
    _, _, _, _, info = proj.step(feasible)
    assert not info["projected"]


def test_projection_is_the_nearest_feasible_action() -> None:
    """On a small budget instance the nearest feasible action to 'pull everything' pulls B arms."""
    env = CoRMABVectorEnv(1, family="budget", num_arms=6, budget=2, infeasible="project")
    env.reset(seed=0)
    x, projected = env._feasible_actions(torch.ones(1, 6, dtype=torch.float64))
    assert bool(projected[0]) and float(x.sum()) == 2.0


def test_arm_pulls() -> None:
    env = gym.make("rlsuite/CoRMAB-Interventions-v0")
    env.reset(seed=0)
    action = env.action_space.sample()
    dose = env.unwrapped.arm_pulls(action)
    np.testing.assert_allclose(dose, env.unwrapped.instance.structure["weights"] @ action)
    env = gym.make("rlsuite/CoRMAB-Path-v0")
    action = env.unwrapped.sample_feasible(np.random.default_rng(0))
    np.testing.assert_array_equal(env.unwrapped.arm_pulls(action), action[:20])


def test_clear_errors_for_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"budget must be an int in \[1, num_arms = 4\]"):
        CoRMABVectorEnv(1, family="budget", num_arms=4, budget=5)
    with pytest.raises(ValueError, match="family must be one of"):
        CoRMABVectorEnv(1, family="knapsack")
    with pytest.raises(
        ValueError, match=r"num_interventions= applies to family='interventions' only"
    ):
        CoRMABVectorEnv(1, family="capacity", num_interventions=10)
    with pytest.raises(TypeError, match="num_edgez"):
        gym.make("rlsuite/CoRMAB-Path-v0", num_edgez=30)
    graph = tmp_path / "graph.txt"
    graph.write_text("0 1\n1 2\n3 4\n")
    with pytest.raises(ValueError, match=r"connected.*2 components"):
        CoRMABVectorEnv(1, family="path", num_arms=5, budget=2, graph=graph)
    graph.write_text("0 1\n1 x\n")
    with pytest.raises(ValueError, match=r"graph\.txt:2"):
        CoRMABVectorEnv(1, family="path", num_arms=3, budget=1, graph=graph)
    bad = tmp_path / "bad.json"
    bad.write_text('{"family": "budget"}')
    with pytest.raises(ValueError, match="keys"):
        load_instance(bad)


def test_user_graph_and_instance_file(tmp_path) -> None:
    graph = tmp_path / "ring.txt"
    graph.write_text("".join(f"{i} {(i + 1) % 6}\n" for i in range(6)))
    env = CoRMABVectorEnv(2, family="path", num_arms=6, budget=2, graph=graph)
    env.reset(seed=0)
    assert env.instance(0).structure["edges"].shape == (6, 2)
    env.step(np.stack([env.sample_feasible(np.random.default_rng(0), i) for i in range(2)]))
    path = tmp_path / "inst.json"
    save_instance(env.instance(0), path)
    loaded = CoRMABVectorEnv(1, family="path", instance=path)
    np.testing.assert_array_equal(
        loaded.instance(0).structure["edges"], env.instance(0).structure["edges"]
    )
    np.testing.assert_array_equal(loaded.instance(0).rewards, env.instance(0).rewards)
    with pytest.raises(ValueError, match="holds a 'path' instance"):
        CoRMABVectorEnv(1, family="budget", instance=path)


def test_checkpoint_state_round_trip() -> None:
    env = CoRMABVectorEnv(3, family="scheduling", instance_seed=None)
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    env.step(np.stack([env.sample_feasible(rng, i) for i in range(3)]))
    state = env.state_dict()
    other = CoRMABVectorEnv(3, family="scheduling", instance_seed=None)
    other.load_state_dict(state)
    actions = np.stack([env.sample_feasible(rng, i) for i in range(3)])
    a, b = env.step(actions), other.step(actions)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


@pytest.mark.gpu
@pytest.mark.parametrize("env_id", IDS)
def test_cuda_env_matches_cpu(env_id: str) -> None:
    """The same seeds and actions on CUDA and on the CPU: the same states and rewards (the
    keyed random numbers are device-independent)."""
    kwargs = {"num_envs": 256, "vectorization_mode": "vector_entry_point", "instance_seed": None}
    cpu = gym.make_vec(env_id, device="cpu", **kwargs)
    gpu = gym.make_vec(env_id, device="cuda", **kwargs)
    cpu.reset(seed=0)
    gpu.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(25):  # crosses an autoreset
        actions = np.stack([cpu.sample_feasible(rng, i) for i in range(256)])
        obs_c, reward_c, *_ = cpu.step(actions)
        obs_g, reward_g, *_ = gpu.step(torch.as_tensor(actions, device="cuda"))
        assert obs_g.device.type == "cuda"
        assert torch.equal(obs_g.cpu(), obs_c)
        assert torch.allclose(reward_g.cpu(), reward_c, rtol=1e-12, atol=1e-12)
