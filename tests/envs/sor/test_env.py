"""The SOR environments: gymnasium contract, seeding, batch == single, instances, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import scipy.stats
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from rlsuite.envs.sor.problems import (
    BETA_PARAMETERS,
    Heat2DFamily,
    ShiftedLaplacianFamily,
    diffusion_coefficient,
)
from rlsuite.envs.sor.vector import SORShiftedLaplacianVectorEnv

import rlsuite  # noqa: F401
from rlsuite.keyed_random import combine


def laplacian(n: int, shift: float = 0.0) -> sp.csr_matrix:
    """The 5-point Laplacian (stencil 4, -1) on an n×n grid plus shift·I, lexicographic order."""
    one_d = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = sp.identity(n)
    return sp.csr_matrix(sp.kron(eye, one_d) + sp.kron(one_d, eye) + shift * sp.identity(n * n))


SPARSE_KWARGS = {
    "matrices": [laplacian(6, 0.1), laplacian(6, 0.3)],
    "rhs": [np.ones(36), np.arange(36.0)],
    "sequence_length": 5,
}
ENV_CASES = [
    ("rlsuite/SOR-ShiftedLaplacian-v0", {"sequence_length": 5}),
    ("rlsuite/SOR-ShiftedLaplacianContinuous-v0", {"sequence_length": 5}),
    ("rlsuite/SOR-ShiftedLaplacian-v0", {"sequence_length": 5, "solver": "ssor_cg"}),
    ("rlsuite/SOR-Heat2D-v0", {"sequence_length": 5, "n": 8}),
    ("rlsuite/SOR-SparseSequence-v0", SPARSE_KWARGS),
]


@pytest.mark.parametrize(("env_id", "kwargs"), ENV_CASES)
def test_check_env(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize(("env_id", "kwargs"), ENV_CASES)
def test_batched_core_equals_single_env(env_id: str, kwargs: dict) -> None:
    num_envs, steps = 4, 5
    vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    singles = [gym.make(env_id, **kwargs) for _ in range(num_envs)]
    vec_obs, _ = vec.reset(seed=10)
    single_obs = np.stack([e.reset(seed=10 + i)[0] for i, e in enumerate(singles)])
    np.testing.assert_array_equal(vec_obs.numpy(), single_obs)
    # Unseeded random actions on purpose: the solvers are batch-invariant (bit-identical alone
    # and in a batch), so any (system, ω) pair must agree; a failure names the actions.
    rng = np.random.default_rng()
    for _ in range(steps):
        actions = np.stack([singles[0].action_space.sample() for _ in range(num_envs)])
        if actions.dtype.kind == "f":
            actions = rng.uniform(1.0, 1.9, size=actions.shape).astype(np.float32)
        vec_obs, vec_reward, _, vec_trunc, vec_info = vec.step(torch.as_tensor(actions))
        for i, env in enumerate(singles):
            obs, reward, _, trunc, info = env.step(actions[i])
            assert info["iterations"] == int(vec_info["iterations"][i]), (i, actions)
            assert info["residual"] == float(vec_info["residual"][i]), (i, actions)
            assert reward == float(vec_reward[i])
            assert trunc == bool(vec_trunc[i])
            np.testing.assert_array_equal(obs, vec_obs[i].numpy())


def test_seeding_is_deterministic_and_seeds_differ() -> None:
    env = gym.make("rlsuite/SOR-ShiftedLaplacian-v0")
    first = [env.reset(seed=5)[0]] + [env.step(3)[0] for _ in range(3)]
    second = [env.reset(seed=5)[0]] + [env.step(3)[0] for _ in range(3)]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    other = env.reset(seed=6)[0]
    assert not np.array_equal(first[0], other)


def test_reward_is_minus_iterations_and_info_fields() -> None:
    env = gym.make("rlsuite/SOR-ShiftedLaplacian-v0", sequence_length=3)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(10)
    assert reward == -info["iterations"] and info["iterations"] > 0
    assert info["converged"] and info["residual"] <= 1e-8
    assert info["omega"] == pytest.approx(1.5)
    assert -0.15 <= info["context"] <= 0.45
    assert not terminated and not truncated
    env.step(0)
    assert env.step(0)[3] is True  # truncated after sequence_length systems


@pytest.mark.parametrize("variance", ["high", "low"])
def test_shift_distribution_matches_beta(variance: str) -> None:
    family = ShiftedLaplacianFamily(variance=variance)
    keys = combine(torch.arange(4000), 0)
    c = family.shift(keys, torch.zeros(4000, dtype=torch.int64)).numpy()
    a, b = BETA_PARAMETERS[variance]
    result = scipy.stats.kstest((c + 0.15) / 0.6, scipy.stats.beta(a, b).cdf)
    assert result.pvalue > 1e-3
    assert c.min() >= -0.15 and c.max() <= 0.45


def test_rhs_is_a_radially_truncated_gaussian() -> None:
    family = ShiftedLaplacianFamily(n=4, rhs_radius=3.0)
    keys = combine(torch.arange(3000), 1)
    b = family.rhs(keys, torch.zeros(3000, dtype=torch.int64)).reshape(3000, -1).numpy()
    radius = np.linalg.norm(b, axis=1)
    assert radius.max() <= 3.0 + 1e-12
    chi = scipy.stats.chi(16)
    truncated_cdf = lambda r: chi.cdf(r) / chi.cdf(3.0)  # noqa: E731
    assert scipy.stats.kstest(radius, truncated_cdf).pvalue > 1e-3
    # directions are isotropic: the mean of b / |b| is near zero
    assert np.abs((b / radius[:, None]).mean(axis=0)).max() < 0.06


def test_heat_step_solves_the_crank_nicolson_system() -> None:
    n, dt = 8, 0.01
    env = gym.make_vec(
        "rlsuite/SOR-Heat2D-v0", num_envs=1, vectorization_mode="vector_entry_point", n=n, dt=dt
    )
    env.reset(seed=0)
    env.step(torch.tensor([10]))
    u_prev = env.unwrapped.state.clone()
    t = int(env.unwrapped.t[0])
    _, _, _, _, info = env.step(torch.tensor([10]))
    u_next = env.unwrapped.state[0].numpy().reshape(-1)
    kappa = float(diffusion_coefficient(torch.tensor((t + 0.5) * dt)))
    assert info["context"][0].item() == pytest.approx(kappa)
    h = 1.0 / (n + 1)
    lap = -laplacian(n) / h**2  # the discrete Δ
    identity = sp.identity(n * n)
    forcing = Heat2DFamily(n, dt).forcing(env.unwrapped.env_keys(), torch.tensor([(t + 0.5) * dt]))
    rhs = (identity + 0.5 * dt * kappa * lap) @ u_prev[0].numpy().reshape(-1) + dt * forcing[
        0
    ].numpy().reshape(-1)
    reference = spla.spsolve(sp.csc_matrix(identity - 0.5 * dt * kappa * lap), rhs)
    np.testing.assert_allclose(u_next, reference, rtol=1e-6, atol=1e-9 * np.abs(reference).max())


def test_heat_diffusion_coefficient_formula() -> None:
    t = torch.tensor([0.0, 0.25, 0.5, 0.75], dtype=torch.float64)
    np.testing.assert_allclose(diffusion_coefficient(t).numpy(), [0.0, 0.1, 0.0, 10.0], atol=1e-14)


def test_next_step_autoreset_starts_a_new_sequence() -> None:
    env = SORShiftedLaplacianVectorEnv(2, sequence_length=2)
    first_obs, _ = env.reset(seed=0)
    env.step(torch.tensor([5, 5]))
    _, _, _, truncated, _ = env.step(torch.tensor([5, 5]))
    assert truncated.all()
    obs, reward, terminated, truncated, info = env.step(torch.tensor([5, 5]))
    assert (reward == 0).all() and not terminated.any() and not truncated.any()
    assert not info["_iterations"].any()  # gymnasium's mask: no solve happened on this step
    assert (env.t == 0).all() and (env.episode_index == 1).all()
    assert not torch.equal(obs, first_obs)  # a new episode draws new systems


def test_state_dict_resumes_the_same_sequence() -> None:
    env = SORShiftedLaplacianVectorEnv(3, sequence_length=6)
    env.reset(seed=4)
    env.step(torch.tensor([1, 2, 3]))
    saved = env.state_dict()
    expected = [env.step(torch.tensor([4, 5, 6]))[1] for _ in range(3)]
    fresh = SORShiftedLaplacianVectorEnv(3, sequence_length=6)
    fresh.load_state_dict(saved)
    got = [fresh.step(torch.tensor([4, 5, 6]))[1] for _ in range(3)]
    torch.testing.assert_close(torch.stack(got), torch.stack(expected))
    with pytest.raises(ValueError, match="batch size"):
        SORShiftedLaplacianVectorEnv(2).load_state_dict(saved)


@pytest.mark.parametrize("bad", [20, -1, 3.5])
def test_bad_discrete_action_is_an_error(bad: float) -> None:
    env = gym.make("rlsuite/SOR-ShiftedLaplacian-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0, 19"):
        env.step(bad)


@pytest.mark.parametrize("bad", [2.5, 0.5, float("nan"), -1.0])
def test_bad_continuous_omega_is_an_error(bad: float) -> None:
    env = gym.make("rlsuite/SOR-ShiftedLaplacianContinuous-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"omega actions must lie in \[1.0, 1.99\]"):
        env.step(np.array([bad], dtype=np.float32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"omega_grid": [1.0, 2.0]}, "omega_grid"),
        ({"omega_range": (0.0, 1.5)}, "omega_range"),
        ({"sequence_length": 0}, "sequence_length"),
        ({"solver": "jacobi"}, "solver"),
        ({"variance": "medium"}, "variance"),
        ({"n": 1}, "n must be"),
        ({"n": 11}, "indefinite"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make("rlsuite/SOR-ShiftedLaplacian-v0", **kwargs)


def test_sparse_family_rejects_bad_matrices(tmp_path) -> None:
    with pytest.raises(ValueError, match="not square"):
        gym.make("rlsuite/SOR-SparseSequence-v0", matrices=[sp.csr_matrix(np.ones((2, 3)))])
    with pytest.raises(ValueError, match="not symmetric"):
        gym.make(
            "rlsuite/SOR-SparseSequence-v0",
            matrices=[sp.csr_matrix(np.array([[2.0, 1.0], [0.0, 2.0]]))],
        )
    with pytest.raises(ValueError, match="not positive definite"):
        gym.make(
            "rlsuite/SOR-SparseSequence-v0",
            matrices=[sp.csr_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))],
        )
    with pytest.raises(ValueError, match="needs matrices"):
        gym.make("rlsuite/SOR-SparseSequence-v0")
    bad = tmp_path / "bad.mtx"
    bad.write_text("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 oops\n")
    with pytest.raises(ValueError, match="not a valid Matrix Market file"):
        gym.make("rlsuite/SOR-SparseSequence-v0", matrices=[str(bad)])


def _first_steps(**kwargs: object) -> tuple[np.ndarray, list[float], list[np.ndarray]]:
    """Reset (seed 0) and three steps of SOR-SparseSequence: first observation, rewards, obs."""
    env = gym.make("rlsuite/SOR-SparseSequence-v0", sequence_length=3, **kwargs)
    first, _ = env.reset(seed=0)
    rewards, observations = [], []
    for action in (3, 12, 17):
        obs, reward, *_ = env.step(action)
        rewards.append(reward)
        observations.append(obs)
    return first, rewards, observations


def test_sparse_family_takes_one_matrix_path_or_vector_alone(tmp_path) -> None:
    """``matrices=`` and ``rhs=`` accept one matrix / path / vector as well as a list of them:
    a single item is the sequence of length one (it used to be a ValueError)."""
    matrix, rhs = laplacian(6, 0.2), np.linspace(-1.0, 2.0, 36)
    path = tmp_path / "a.mtx"
    scipy.io.mmwrite(str(path), matrix)
    np.save(tmp_path / "b.npy", rhs)
    listed = _first_steps(matrices=[matrix], rhs=[rhs])
    assert listed[1][0] < -5  # a real solve: SOR needs many sweeps
    for kwargs in (
        {"matrices": matrix, "rhs": rhs},
        {"matrices": str(path), "rhs": [rhs]},
        {"matrices": path, "rhs": str(tmp_path / "b.npy")},
        {"matrices": [str(path)], "rhs": rhs.tolist()},
    ):
        first, rewards, observations = _first_steps(**kwargs)
        np.testing.assert_array_equal(first, listed[0])
        assert rewards == listed[1]
        np.testing.assert_array_equal(np.stack(observations), np.stack(listed[2]))
    # the default rhs (ones) and a single matrix agree with the listed form too
    np.testing.assert_array_equal(
        _first_steps(matrices=matrix)[0], _first_steps(matrices=[matrix])[0]
    )
    assert _first_steps(matrices=matrix)[1] == _first_steps(matrices=[matrix])[1]
    with pytest.raises(ValueError, match="rhs has 2 vectors for 1 matrices"):
        gym.make("rlsuite/SOR-SparseSequence-v0", matrices=matrix, rhs=[rhs, rhs])
    with pytest.raises(ValueError, match="matrices must be a SciPy sparse matrix"):
        gym.make("rlsuite/SOR-SparseSequence-v0", matrices=[])


def test_sparse_env_reads_matrix_market_and_agrees_with_grid_env(tmp_path) -> None:
    """The same shifted Laplacian through the sparse CPU path and the torch grid path."""
    n, path = 10, tmp_path / "a.mtx"
    grid = SORShiftedLaplacianVectorEnv(1, n=n)
    grid.reset(seed=0)
    batch = grid.pending()
    rhs = batch.rhs[0].numpy().reshape(-1)
    c = float(batch.context[0])
    scipy.io.mmwrite(str(path), laplacian(n, c))
    sparse_env = gym.make("rlsuite/SOR-SparseSequence-v0", matrices=[str(path)], rhs=[rhs])
    sparse_env.reset(seed=0)
    _, _, _, _, info = sparse_env.step(10)
    _, _, _, _, grid_info = grid.step(torch.tensor([10]))
    assert abs(info["iterations"] - int(grid_info["iterations"][0])) <= 1


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**40), action=st.integers(0, 19))
def test_property_rewards_and_observations_are_sane(seed: int, action: int) -> None:
    env = gym.make("rlsuite/SOR-ShiftedLaplacian-v0", sequence_length=2)
    obs, _ = env.reset(seed=seed)
    assert np.all(np.isfinite(obs))
    _, reward, _, _, info = env.step(action)
    assert -10_000 <= reward < 0
    assert info["converged"] and info["residual"] <= 1e-8
    assert 0 < obs[1] < 1.04  # Gershgorin bound 4/(4+c) with c >= -0.15


@pytest.mark.gpu
def test_sor_env_on_cuda_matches_cpu() -> None:
    kwargs = {"num_envs": 8, "vectorization_mode": "vector_entry_point", "sequence_length": 3}
    cpu = gym.make_vec("rlsuite/SOR-ShiftedLaplacian-v0", device="cpu", **kwargs)
    gpu = gym.make_vec("rlsuite/SOR-ShiftedLaplacian-v0", device="cuda", **kwargs)
    cpu.reset(seed=0)
    gpu.reset(seed=0)
    actions = torch.arange(8)
    _, r_cpu, _, _, _ = cpu.step(actions)
    _, r_gpu, _, _, _ = gpu.step(actions.cuda())
    assert r_gpu.device.type == "cuda"
    assert (r_cpu - r_gpu.cpu()).abs().max() <= 1


def test_docstring_example_runs() -> None:
    import doctest

    import rlsuite.envs.sor.env as module

    result = doctest.testmod(module, raise_on_error=False)
    assert result.attempted >= 4 and result.failed == 0


def test_the_box_space_bounds_themselves_are_legal_actions() -> None:
    """float32(1.99) is in the action space (and above 1.99): it must be accepted, not clipped."""
    from rlsuite.envs.sor.vector import SORShiftedLaplacianVectorEnv

    env = SORShiftedLaplacianVectorEnv(2, action_type="continuous")
    env.reset(seed=0)
    high = env.single_action_space.high[0]
    assert float(high) > 1.99 and env.single_action_space.contains(
        np.array([high], dtype=np.float32)
    )
    env.step(np.array([[high], [env.single_action_space.low[0]]], dtype=np.float32))
