"""The three-body environments: gymnasium contract, reward formula, seeding, batch == single,
initial conditions, episode ends, the fixed-η trade-off and errors."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from rlsuite.envs.threebody import initial_conditions as ics
from rlsuite.envs.threebody import nbody
from rlsuite.envs.threebody.baselines import FixedAction, expand_baselines, plot_evaluation
from rlsuite.envs.threebody.vector import DEFAULT_INTERVAL, ThreeBodyVectorEnv

import rlsuite  # noqa: F401
from rlsuite.evaluation import EvalRow, run_agent_episodes
from rlsuite.keyed_random import combine

IDS = ["rlsuite/ThreeBody-v0", "rlsuite/ThreeBody-Leapfrog-v0"]
CHEAP = 9  # the largest η: one to a few substeps per interval


@pytest.mark.parametrize("env_id", IDS)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs.shape == (13,) and env.action_space == gym.spaces.Discrete(10)


def test_make_vec_gives_the_native_batched_env() -> None:
    vec = gym.make_vec("rlsuite/ThreeBody-v0", num_envs=5, vectorization_mode="vector_entry_point")
    assert isinstance(vec.unwrapped, ThreeBodyVectorEnv)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (5, 13) and obs.dtype == torch.float32


@pytest.mark.parametrize("env_id", IDS)
def test_batched_core_equals_single_env_bit_for_bit(env_id: str) -> None:
    actions = np.array([[9, 7, 8], [8, 9, 9], [9, 9, 6], [7, 8, 9]])  # (steps, envs)
    vec = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=11)
    batched = [(obs, None)]
    for a in actions:
        obs, reward, *_ = vec.step(torch.as_tensor(a))
        batched.append((obs, reward))
    for i in range(3):
        single = gym.make(env_id).unwrapped
        obs, _ = single.reset(seed=11 + i)
        assert np.array_equal(obs, batched[0][0][i].numpy())
        for t, a in enumerate(actions[:, i]):
            obs, reward, *_ = single.step(int(a))
            assert np.array_equal(obs, batched[t + 1][0][i].numpy())
            assert reward == float(batched[t + 1][1][i])


def test_same_seed_same_trajectory_and_different_seeds_differ() -> None:
    def trajectory(seed: int) -> list[torch.Tensor]:
        env = ThreeBodyVectorEnv(2)
        obs, _ = env.reset(seed=seed)
        out = [obs, env.state.positions.clone()]
        for a in (9, 8, 9):
            obs, reward, *_ = env.step(torch.tensor([a, a]))
            out += [obs, reward, env.state.positions.clone()]
        return out

    first, again, other = trajectory(5), trajectory(5), trajectory(6)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[1], other[1])


def test_observation_layout() -> None:
    env = ThreeBodyVectorEnv(2)
    obs, _ = env.reset(seed=0)
    x, v = env.state.positions, env.state.velocities
    assert torch.allclose(obs[:, :6].double(), (x[..., :2] / 10).reshape(2, 6), atol=1e-6)
    assert torch.allclose(obs[:, 6:12].double(), v[..., :2].reshape(2, 6), atol=1e-7)
    assert torch.equal(obs[:, 12], torch.zeros(2))  # no energy error at reset (as the paper)
    obs, *_, info = env.step(torch.tensor([CHEAP, 5]))
    expected = -torch.log10(info["energy_error"])
    assert torch.allclose(obs[:, 12].double(), expected, rtol=1e-6)


def test_paper_reward_matches_the_formula_by_hand() -> None:
    env = ThreeBodyVectorEnv(2)
    env.reset(seed=0)
    rewards, infos = [], []
    for _ in range(3):
        _, reward, _, _, info = env.step(torch.tensor([CHEAP, 4]))
        rewards.append(reward)
        infos.append({k: v.clone() for k, v in info.items()})
    assert torch.equal(rewards[0], torch.zeros(2))  # R = 0 on the first step
    for t in (2, 3):
        for i in range(2):
            error = float(infos[t - 1]["energy_error"][i])
            eta = float(infos[t - 1]["eta"][i])
            by_hand = -3000 * math.log10(error / 1e-10) / (
                abs(math.log10(error)) ** 3 * t
            ) + 4 / abs(math.log10(eta))
            assert float(rewards[t - 1][i]) == pytest.approx(by_hand, rel=1e-12, abs=1e-12)


def test_force_evaluation_reward_uses_the_counted_cost() -> None:
    env = ThreeBodyVectorEnv(2, reward="force_evaluations", reward_weights=(10.0, 2.0))
    env.reset(seed=1)
    env.step(torch.tensor([CHEAP, 3]))
    _, reward, _, _, info = env.step(torch.tensor([CHEAP, 3]))
    for i in range(2):
        error = float(info["energy_error"][i])
        n = int(info["force_evaluations"][i])
        by_hand = -10 * math.log10(error / 1e-10) / (abs(math.log10(error)) ** 3 * 2) + 2 / (
            1 + math.log10(n)
        )
        assert float(reward[i]) == pytest.approx(by_hand, rel=1e-12, abs=1e-12)


def test_info_counts_and_time() -> None:
    env = ThreeBodyVectorEnv(3)
    env.reset(seed=2)
    total = torch.zeros(3, dtype=torch.int64)
    for k in range(1, 4):
        *_, info = env.step(torch.tensor([CHEAP, 8, 7]))
        total += info["force_evaluations"]
        assert torch.equal(info["total_force_evaluations"], total)
        assert torch.equal(info["time"], torch.full((3,), DEFAULT_INTERVAL) * k) or torch.allclose(
            info["time"], torch.full((3,), DEFAULT_INTERVAL * k, dtype=torch.float64), rtol=1e-15
        )
    assert bool((info["force_evaluations"] >= 1).all())
    assert torch.equal(info["eta"], env.eta_grid[torch.tensor([CHEAP, 8, 7])])


def test_truncation_after_max_steps_and_autoreset() -> None:
    env = ThreeBodyVectorEnv(2, max_steps=3)
    env.reset(seed=0)
    for _ in range(2):
        _, _, terminated, truncated, _ = env.step(torch.tensor([CHEAP, CHEAP]))
        assert not truncated.any() and not terminated.any()
    _, _, terminated, truncated, _ = env.step(torch.tensor([CHEAP, CHEAP]))
    assert truncated.all() and not terminated.any()
    obs, reward, terminated, truncated, _ = env.step(torch.tensor([CHEAP, CHEAP]))  # the reset step
    assert torch.equal(reward, torch.zeros(2)) and torch.equal(obs[:, 12], torch.zeros(2))
    assert torch.equal(env.episode_index, torch.ones(2, dtype=torch.int64))


def test_termination_on_energy_error() -> None:
    env = ThreeBodyVectorEnv(2, energy_error_limit=1e-9)
    env.reset(seed=0)
    for _ in range(20):
        _, _, terminated, _, info = env.step(torch.tensor([CHEAP, 0]))
        if terminated.any():
            break
    assert bool(terminated[0]) and float(info["energy_error"][0]) > 1e-9
    assert not bool(terminated[1])


def test_close_encounter_ends_the_episode_cleanly() -> None:
    head_on = {
        "masses": [0.5, 0.5],
        "positions": [[-0.5, 0.0], [0.5, 0.0]],
        "velocities": [[0.0, 0.0], [0.0, 0.0]],  # radial infall: a collision at t ≈ 1.11
    }
    env = ThreeBodyVectorEnv(1, initial_state=head_on, interval=2.0, max_substeps=2000)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1, 9)
    obs, reward, terminated, truncated, info = env.step(torch.tensor([CHEAP]))
    assert bool(terminated[0]) and bool(info["encounter"][0]) and not bool(truncated[0])
    assert bool(torch.isfinite(obs).all()) and bool(torch.isfinite(reward).all())
    assert float(info["time"][0]) < 2.0


def test_paper_initial_conditions() -> None:
    key = combine(torch.arange(200), 0)
    x, v, m = ics.paper_triple(key)
    assert torch.equal(m, torch.full((200, 3), 1 / 3, dtype=torch.float64))
    com_x, com_v = nbody.center_of_mass(x, v, m)
    assert com_x.abs().max() < 1e-13 and com_v.abs().max() < 1e-15
    assert torch.equal(x[..., 2], torch.zeros(200, 3))
    # undo the centre-of-mass shift: body 0 starts at the origin
    shift = x[:, 0]
    raw = x - shift.unsqueeze(1)
    assert raw[:, 1, 0].min() >= 5 and raw[:, 1, 0].max() <= 20
    assert raw[:, 1, 1].min() >= 0 and raw[:, 1, 1].max() <= 10
    assert raw[:, 2, 0].min() >= -10 and raw[:, 2, 0].max() <= 0
    assert raw[:, 2, 1].min() >= 5 and raw[:, 2, 1].max() <= 20
    rel = v - v[:, 2:3]  # body 2 was at rest
    km = nbody.KM_PER_S
    assert torch.allclose(
        rel[:, 0], torch.tensor([0.0, 10 * km, 0.0], dtype=torch.float64).expand(200, 3)
    )
    assert torch.allclose(
        rel[:, 1], torch.tensor([-10 * km, 0.0, 0.0], dtype=torch.float64).expand(200, 3)
    )
    # the unit system: 10 km/s ≈ 0.1938 velocity units, 0.1 yr ≈ 1.0883 time units
    assert 10 * km == pytest.approx(0.193841, rel=1e-5)
    assert DEFAULT_INTERVAL == pytest.approx(1.08826, rel=1e-5)


def test_figure_eight_and_random_bound_sets() -> None:
    key = combine(torch.arange(64), 3)
    x, v, m = ics.figure_eight(key, perturbation=0.0)
    assert torch.equal(x[0], x[1]) and float(nbody.energy(x, v, m)[0]) == pytest.approx(
        ics.FIGURE_EIGHT_ENERGY, rel=3e-8
    )
    x, v, m = ics.figure_eight(key, perturbation=1e-3)
    assert 1e-5 < float((x[0] - x[1]).abs().max()) < 1e-2
    x, v, m = ics.random_bound(key, n_bodies=4)
    assert x.shape == (64, 4, 3)
    assert bool((nbody.energy(x, v, m) < 0).all())
    virial = nbody.kinetic_energy(v, m) / nbody.potential_energy(x, m).abs()
    assert float(virial.min()) >= 0.1 - 1e-12 and float(virial.max()) <= 0.5 + 1e-12
    env = ThreeBodyVectorEnv(2, initial_conditions="random_bound", n_bodies=4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 17)


def test_bad_input_gets_clear_errors() -> None:
    env = ThreeBodyVectorEnv(2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must be integers in \[0, 9\]"):
        env.step(torch.tensor([0, 10]))
    single = gym.make("rlsuite/ThreeBody-v0")
    single.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an int"):
        single.step(0.5)
    with pytest.raises(ValueError, match="masses must be > 0"):
        ThreeBodyVectorEnv(1, masses=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="masses must be > 0"):
        ThreeBodyVectorEnv(
            1,
            initial_state={
                "masses": [1, -1],
                "positions": [[0, 0], [1, 0]],
                "velocities": [[0, 0], [0, 0]],
            },
        )
    with pytest.raises(ValueError, match="must not coincide"):
        ThreeBodyVectorEnv(
            1,
            initial_state={
                "masses": [1, 1, 1],
                "positions": [[0, 0], [1, 0], [1, 0]],
                "velocities": [[0, 0]] * 3,
            },
        )
    with pytest.raises(ValueError, match="initial_conditions must be one of"):
        ThreeBodyVectorEnv(1, initial_conditions="pythagorean")
    with pytest.raises(ValueError, match="unknown integrator"):
        ThreeBodyVectorEnv(1, integrator="rk4")
    with pytest.raises(ValueError, match=r"eta_grid must be .* in \(0, 1\)"):
        ThreeBodyVectorEnv(1, eta_grid=[0.01, 1.5])
    with pytest.raises(ValueError, match="reward must be one of"):
        ThreeBodyVectorEnv(1, reward="walltime")
    with pytest.raises(ValueError, match="n_bodies=4 needs"):
        ThreeBodyVectorEnv(1, n_bodies=4)


def test_checkpoint_state_roundtrip_continues_identically() -> None:
    env = ThreeBodyVectorEnv(2, max_steps=4)
    env.reset(seed=9)
    env.step(torch.tensor([CHEAP, 8]))
    saved = env.state_dict()
    later = [env.step(torch.tensor([8, CHEAP]))[0] for _ in range(4)]
    restored = ThreeBodyVectorEnv(2, max_steps=4)
    restored.load_state_dict(saved)
    again = [restored.step(torch.tensor([8, CHEAP]))[0] for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(later, again, strict=True))


def _fixed_eta_medians(seeds: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Median final |ΔE| and force evaluations of every fixed action, all in one batch."""
    actions = torch.arange(10).repeat_interleave(seeds)
    env = ThreeBodyVectorEnv(len(actions), max_steps=steps, energy_error_limit=10.0)
    env.reset(seed=[s for _ in range(10) for s in range(seeds)])
    for _ in range(steps):
        *_, info = env.step(actions)
    error = info["energy_error"].view(10, seeds).median(dim=1).values.numpy()
    cost = info["total_force_evaluations"].view(10, seeds).double().median(dim=1).values.numpy()
    return error, cost


@pytest.mark.parametrize("steps", [pytest.param(2), pytest.param(10, marks=pytest.mark.slow)])
def test_fixed_eta_trade_off_is_monotone(steps: int) -> None:
    error, cost = _fixed_eta_medians(seeds=20, steps=steps)
    # Non-decreasing above the double-precision floor: at the two smallest η the truncation
    # error is below roundoff, which grows with the number of substeps, so there the medians
    # are roundoff noise of order 1e-15 (measured after 2 steps: 6.0e-16 at η = 1e-4 and
    # 5.8e-16 at 2.2e-4; after 10 steps: 2.2e-15 and 1.0e-15).
    assert np.all(np.diff(error) >= -1e-14), error
    assert error[-1] > 1e3 * error[0]
    assert np.all(np.diff(cost) <= 0), cost
    assert cost[0] > 100 * cost[-1]


def test_baselines_and_evaluation_plot(tmp_path) -> None:
    assert expand_baselines(["fixed:all", "x"]) == [f"fixed:{k}" for k in range(10)] + ["x"]
    env = ThreeBodyVectorEnv(3, max_steps=2)
    results = run_agent_episodes(FixedAction(CHEAP), env, [100, 101, 102])
    assert set(results.metrics) == {"energy_error", "total_force_evaluations"}
    assert np.all(results.lengths == 2)
    rows = [
        EvalRow(
            f"fixed:{k}",
            3,
            0.0,
            0.0,
            0.0,
            2.0,
            {
                "energy_error": (1e-9 * k, 2e-9 * k, 3e-9 * k),
                "total_force_evaluations": (10.0 / k, 20.0 / k, 30.0 / k),
            },
        )
        for k in range(1, 4)
    ] + [
        EvalRow(
            "sb3.DQN",
            3,
            0.0,
            0.0,
            0.0,
            2.0,
            {"energy_error": (1e-9, 2e-9, 3e-9), "total_force_evaluations": (5.0, 6.0, 7.0)},
        )
    ]
    path = tmp_path / "plot.png"
    plot_evaluation(rows, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.gpu
@pytest.mark.parametrize("env_id", IDS)
def test_cuda_env_matches_cpu(env_id: str) -> None:
    kwargs = {"num_envs": 64, "vectorization_mode": "vector_entry_point"}
    cpu = gym.make_vec(env_id, device="cpu", **kwargs)
    gpu = gym.make_vec(env_id, device="cuda", **kwargs)
    cpu.reset(seed=0)
    gpu.reset(seed=0)
    actions = torch.arange(64) % 4 + 6
    for _ in range(3):
        obs_c, *_, info_c = cpu.step(actions)
        obs_g, *_, info_g = gpu.step(actions.cuda())
    assert obs_g.device.type == "cuda"
    assert torch.allclose(obs_g.cpu(), obs_c, rtol=1e-5, atol=1e-6)
    assert torch.allclose(
        info_g["energy_error"].cpu(), info_c["energy_error"], rtol=1e-3, atol=1e-14
    )
    assert torch.equal(info_g["force_evaluations"].cpu(), info_c["force_evaluations"])


def test_documented_units_interval_and_eta_grid() -> None:
    """What the class docstring states about units, ``interval`` and the η grid, as values."""
    # built-in units: mass 3 M☉, length 1 au → one time unit ≈ 0.0919 yr; default interval 0.1 yr
    assert nbody.YEAR == pytest.approx(10.88, abs=0.01)
    assert DEFAULT_INTERVAL == pytest.approx(1.088, abs=0.001)
    assert 1 / nbody.YEAR == pytest.approx(0.0919, abs=1e-4)
    # M☉ and au: the time unit is 1/(2π) yr, i.e. the paper's unit times sqrt(3)
    assert math.sqrt(3.0) / nbody.YEAR == pytest.approx(1 / (2 * math.pi), rel=1e-4)
    # the default grid: action k plays η = 10^(−4 + k/3)
    env = ThreeBodyVectorEnv(1)
    expected = 10.0 ** (-4.0 + torch.arange(10, dtype=torch.float64) / 3.0)
    torch.testing.assert_close(env.eta_grid, expected, rtol=1e-12, atol=0)
    # a given η: a grid that holds it, stepped with its index
    env = ThreeBodyVectorEnv(2, eta_grid=[1e-3, 1e-2])
    env.reset(seed=0)
    _, _, _, _, info = env.step(torch.tensor([1, 0]))
    assert info["eta"].tolist() == [0.01, 0.001]


def test_docstring_example_with_a_system_of_your_own() -> None:
    """The figure-eight as ``initial_state`` in G = 1 units, ``interval`` = period / 100: 100
    steps of η = 0.01 land on one period with a tiny energy error (the module's doctest)."""
    import doctest

    import rlsuite.envs.threebody.env as module

    result = doctest.testmod(module, raise_on_error=False)
    assert result.attempted >= 8 and result.failed == 0
    single = gym.make(
        "rlsuite/ThreeBody-v0",
        initial_state={"masses": [1.0, 2.0], "positions": [[1.0, 0.0], [-0.5, 0.0]],
                       "velocities": [[0.0, 0.5], [0.0, -0.25]]},
        interval=0.5,
        eta_grid=[0.02],
    )  # fmt: skip
    obs, _ = single.reset(seed=0)
    assert obs.shape == (4 * 2 + 1,) and single.action_space == gym.spaces.Discrete(1)
    _, _, _, _, info = single.step(0)
    assert info["time"] == pytest.approx(0.5) and info["eta"] == pytest.approx(0.02)


def test_fixed_baselines_are_labelled_with_their_eta() -> None:
    from rlsuite.envs.threebody import baselines
    from rlsuite.envs.threebody.vector import ThreeBodyVectorEnv

    def make(n: int) -> ThreeBodyVectorEnv:
        return ThreeBodyVectorEnv(n)

    labels = [baselines.describe(f"fixed:{k}", make) for k in (0, 9)]
    assert labels == ["fixed:0 (η=0.0001)", "fixed:9 (η=0.1)"]
    assert baselines._fixed_index(labels[1]) == 9 and baselines._fixed_index("fixed:4") == 4
