"""The RLlib adapter: env ids by name through ``vector_entry_point``, ``rllib.PPO`` and
``rllib.DQN``.

Needs the ``[ray]`` extra (``pytest -m ray``); one small local Ray instance serves the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.ray

ENV_ID = "rlsuite/SOR-ShiftedLaplacian-v0"


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _make_env(num_envs: int = 4) -> gym.vector.VectorEnv:
    return gym.make_vec(
        ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", sequence_length=4
    )


def test_numpy_view_of_the_native_env() -> None:
    pytest.importorskip("ray")
    from rlsuite.envs.sor.vector import SORShiftedLaplacianVectorEnv

    from rlsuite.integrations.rllib import NumpyVectorEnv, make_rllib_env

    env = make_rllib_env(ENV_ID, {"num_envs": 3, "sequence_length": 2})
    assert isinstance(env, NumpyVectorEnv)
    assert isinstance(env.unwrapped, SORShiftedLaplacianVectorEnv)
    reference = SORShiftedLaplacianVectorEnv(3, sequence_length=2)
    obs, _ = env.reset(seed=5)
    ref_obs, _ = reference.reset(seed=15)  # an int seed s gives env i the seed s * num_envs + i
    assert isinstance(obs, np.ndarray) and obs.dtype == env.single_observation_space.dtype
    np.testing.assert_array_equal(obs, ref_obs.numpy())
    actions = np.array([3, 4, 5])
    for _ in range(3):  # the third step is the next-step autoreset of the native env
        obs, reward, _, truncated, info = env.step(actions)
        ref = reference.step(torch.as_tensor(actions))
        np.testing.assert_array_equal(obs, ref[0].numpy())
        np.testing.assert_array_equal(reward, ref[1].numpy())
        np.testing.assert_array_equal(truncated, ref[3].numpy())
        assert all(isinstance(v, np.ndarray) for v in info.values())
    assert not truncated.any() and (reward == 0).all()
    single = make_rllib_env(ENV_ID, {"sequence_length": 2})
    assert isinstance(single, gym.Env) and not isinstance(single, gym.vector.VectorEnv)


def test_rllib_builds_the_native_batched_env_by_name(ray_local: None) -> None:
    from ray.rllib.algorithms.ppo import PPOConfig

    from rlsuite.integrations.rllib import NumpyVectorEnv, register_rllib_envs

    assert ENV_ID in register_rllib_envs()
    config = (
        PPOConfig()
        .environment(ENV_ID, env_config={"sequence_length": 4})
        .env_runners(
            num_env_runners=1,
            num_envs_per_env_runner=8,
            gym_env_vectorize_mode="vector_entry_point",
        )
        .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
    )
    algo = config.build_algo()
    try:
        # the remote runner (a separate process) built one native batched env of 8
        remote = algo.env_runner_group.foreach_env_runner(
            lambda runner: (
                type(runner.env.env).__name__,
                type(runner.env.unwrapped).__name__,
                runner.env.unwrapped.num_envs,
            ),
            local_env_runner=False,
        )
        assert remote == [(NumpyVectorEnv.__name__, "SORShiftedLaplacianVectorEnv", 8)]
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 64
    finally:
        algo.stop()


def test_rllib_ppo_learn_save_load_predict(ray_local: None, tmp_path) -> None:
    from rlsuite.envs.sor.vector import SORShiftedLaplacianVectorEnv

    from rlsuite.integrations.rllib import NumpyVectorEnv, RLlibPPO
    from rlsuite.registry import get_agent_class
    from rlsuite.runs import load_checkpoint

    assert get_agent_class("rllib.PPO") is RLlibPPO
    env = _make_env()
    params = {"train_batch_size": 64, "kwargs": {"minibatch_size": 32, "num_epochs": 2}}
    agent = RLlibPPO(env, params, seed=0)
    runner_env = agent.algo.env_runner.env  # the local runner: RLlib's own copy, native inside
    assert isinstance(runner_env.env, NumpyVectorEnv)
    assert isinstance(runner_env.unwrapped, SORShiftedLaplacianVectorEnv)
    assert runner_env.num_envs == 4
    initial = agent.state_dict()
    seen: list[int] = []
    agent.learn(200, callback=lambda a, m: seen.append(a.num_timesteps) or None)
    assert agent.num_timesteps >= 200 and seen[-1] == agent.num_timesteps
    trained = agent.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in trained.values())
    assert any(not torch.equal(initial[k], trained[k]) for k in trained)  # learning moved them

    path = agent.save(tmp_path / "agent.pt")
    _, meta = load_checkpoint(path)  # tensors + JSON, torch.load(weights_only=True)
    assert meta["agent"] == "rllib.PPO" and meta["config"]["train_batch_size"] == 64
    restored = RLlibPPO.load(path, _make_env())
    try:
        assert restored.num_timesteps == agent.num_timesteps
        for key, value in restored.state_dict().items():
            torch.testing.assert_close(value, trained[key])
        obs, _ = env.reset(seed=1)
        actions = agent.predict(obs)
        assert isinstance(actions, torch.Tensor) and actions.shape == (4,)
        torch.testing.assert_close(restored.predict(obs), actions)
        np.testing.assert_array_equal(restored.predict(obs.numpy()), actions.numpy())
        # the inference module of the runner, which predict uses, received the loaded weights
        runner_weights = restored.algo.get_module().state_dict()
        for key, value in runner_weights.items():
            torch.testing.assert_close(value, trained["module." + key])
        env.step(actions)
    finally:
        agent.close()
        restored.close()


def test_rllib_ppo_on_a_box_action_env(ray_local: None) -> None:
    from rlsuite.integrations.rllib import RLlibPPO

    env = gym.make_vec(
        "rlsuite/SOR-ShiftedLaplacianContinuous-v0",
        num_envs=4,
        vectorization_mode="vector_entry_point",
        sequence_length=4,
        n=6,
    )
    params = {"train_batch_size": 64, "kwargs": {"minibatch_size": 32, "num_epochs": 1}}
    agent = RLlibPPO(env, params, seed=0)
    try:
        agent.learn(64)  # RLlib's sampled actions reach the bounds exactly; the env accepts them
        obs, _ = env.reset(seed=1)
        for deterministic in (True, False):
            omega = agent.predict(obs, deterministic=deterministic)
            assert omega.shape == (4, 1)
            assert bool(((omega >= 1.0) & (omega <= 1.99)).all())
            env.step(omega)
    finally:
        agent.close()


def test_rllib_dqn_learn_save_load_greedy_predict(ray_local: None, tmp_path) -> None:
    from rlsuite.envs.sor.vector import SORShiftedLaplacianVectorEnv

    from rlsuite.integrations.rllib import NumpyVectorEnv, RLlibDQN
    from rlsuite.registry import get_agent_class
    from rlsuite.runs import load_checkpoint

    assert get_agent_class("rllib.DQN") is RLlibDQN
    env = _make_env(64)  # one DQN iteration samples >= 1000 env steps: 16 batched steps of 64
    params = {
        "train_batch_size": 16,
        "kwargs": {
            "replay_buffer_config": {"capacity": 2000},
            "num_steps_sampled_before_learning_starts": 128,
            "target_network_update_freq": 100,
        },
    }
    agent = RLlibDQN(env, params, seed=0)
    runner_env = agent.algo.env_runner.env
    assert isinstance(runner_env.env, NumpyVectorEnv)
    assert isinstance(runner_env.unwrapped, SORShiftedLaplacianVectorEnv)
    initial = agent.state_dict()
    assert any(k.startswith("module._target_") for k in initial)  # the target network is saved
    seen: list[dict[str, float]] = []
    agent.learn(300, callback=lambda a, m: seen.append(dict(m)) or None)
    assert agent.num_timesteps >= 300 and "qf_loss" in seen[-1]
    trained = agent.state_dict()
    assert any(not torch.equal(initial[k], trained[k]) for k in trained)

    path = agent.save(tmp_path / "dqn.pt")
    _, meta = load_checkpoint(path)
    assert meta["agent"] == "rllib.DQN" and meta["config"]["train_batch_size"] == 16
    restored = RLlibDQN.load(path, _make_env(64))
    try:
        assert restored.num_timesteps == agent.num_timesteps
        for key, value in restored.state_dict().items():
            torch.testing.assert_close(value, trained[key])
        obs, _ = env.reset(seed=1)
        actions = agent.predict(obs)
        assert isinstance(actions, torch.Tensor) and actions.shape == (64,)
        torch.testing.assert_close(restored.predict(obs), actions)
        np.testing.assert_array_equal(restored.predict(obs.numpy()), actions.numpy())
        module = restored.algo.get_module()  # greedy: the argmax of the Q-values
        with torch.no_grad():
            q_values = module.compute_q_values({"obs": obs})["qf_preds"]
        torch.testing.assert_close(actions, q_values.argmax(-1))
        explored = restored.predict(obs, deterministic=False)  # epsilon-greedy
        assert explored.shape == (64,) and bool(((explored >= 0) & (explored < 20)).all())
        env.step(actions)
    finally:
        agent.close()
        restored.close()


def test_rllib_errors_are_clear(ray_local: None) -> None:
    from rlsuite.envs.sor.vector import SORShiftedLaplacianVectorEnv

    from rlsuite.integrations.rllib import RLlibDQN, RLlibPPO, make_rllib_env

    with pytest.raises(ValueError, match=r"gymnasium\.make_vec"):
        RLlibPPO(SORShiftedLaplacianVectorEnv(2))
    with pytest.raises(ValueError, match=r"agent\.params\.kwargs"):
        RLlibPPO(_make_env(2), {"kwargs": {"not_an_argument": 1}})
    box_env = gym.make_vec(
        "rlsuite/SOR-ShiftedLaplacianContinuous-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        sequence_length=4,
    )
    with pytest.raises(ValueError, match=r"rllib\.DQN needs a Discrete action space, got Box"):
        RLlibDQN(box_env)
    with pytest.raises(ValueError, match=r"agent\.params\.kwargs for rllib\.DQN"):
        RLlibDQN(_make_env(2), {"kwargs": {"capacity": 1000}})  # belongs in replay_buffer_config
    with pytest.raises(ValueError, match="unknown rlsuite environment"):
        make_rllib_env("rlsuite/Nope-v0", {})


def _masked_env(num_envs: int = 4) -> gym.vector.VectorEnv:
    return gym.make_vec(
        "rlsuite/MallocGame-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        num_buffers=12,
        max_offsets=4,
    )


def test_masked_env_gives_rllib_its_mask_in_the_observation() -> None:
    pytest.importorskip("ray")
    from rlsuite.integrations.rllib import MaskInObservation, NumpyVectorEnv, make_rllib_env

    env = make_rllib_env("rlsuite/MallocGame-v0", {"num_envs": 3, "num_buffers": 12})
    assert isinstance(env, NumpyVectorEnv) and env.masked
    assert set(env.single_observation_space.spaces) == {"observations", "action_mask"}
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["action_mask"], info["action_mask"].astype(np.float32))
    rng = np.random.default_rng(0)
    for _ in range(30):  # the mask row always belongs to the observation row beside it
        legal = obs["action_mask"] > 0.5
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in legal])
        obs, _, _, _, info = env.step(actions)
        np.testing.assert_array_equal(obs["action_mask"], env.unwrapped.action_masks().numpy())
    single = make_rllib_env("rlsuite/MallocGame-v0", {"num_buffers": 12})  # RLlib's "sync" mode
    assert isinstance(single, MaskInObservation)
    obs, info = single.reset(seed=0)
    assert single.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["action_mask"], info["action_mask"].astype(np.float32))


def test_rllib_ppo_masks_illegal_actions(ray_local: None, tmp_path) -> None:
    from rlsuite.integrations.rllib import MaskedPPOTorchModule, RLlibPPO

    env = _masked_env()
    params = {"train_batch_size": 96, "kwargs": {"minibatch_size": 32, "num_epochs": 2}}
    agent = RLlibPPO(env, params, seed=0)
    restored = None
    try:
        assert isinstance(agent.algo.get_module(), MaskedPPOTorchModule)
        agent.learn(192)  # RLlib samples with the module: an illegal action would raise
        path = agent.save(tmp_path / "masked.pt")
        restored = RLlibPPO.load(path, env)  # predict reads the masks of its env's state
        obs, info = env.reset(seed=3)
        legal_probability = []
        for _ in range(40):
            for deterministic in (True, False):
                actions = agent.predict(obs, deterministic=deterministic)
                mask = info["action_mask"]
                assert bool(mask[torch.arange(4), actions].all()), "an illegal action"
            torch.testing.assert_close(restored.predict(obs), agent.predict(obs))
            module = agent.algo.get_module()
            batch = {"obs": {"observations": obs, "action_mask": mask.float()}}
            with torch.no_grad():
                logits = module.forward_inference(batch)["action_dist_inputs"]
            legal_probability.append(float((logits.softmax(-1) * mask).sum(-1).min()))
            obs, _, _, _, info = env.step(actions)
        assert min(legal_probability) == pytest.approx(1.0)  # exactly 0 on the illegal ones
    finally:
        agent.close()
        if restored is not None:
            restored.close()


def test_rllib_dqn_refuses_masked_envs(ray_local: None) -> None:
    from rlsuite.integrations.rllib import MaskedPPOTorchModule, RLlibDQN

    with pytest.raises(ValueError, match=r"action masks.*use rllib\.PPO"):
        RLlibDQN(_masked_env(2))
    space = gym.spaces.Box(0, 1, (3,))
    with pytest.raises(ValueError, match="Dict observation space"):
        MaskedPPOTorchModule(observation_space=space, action_space=gym.spaces.Discrete(2))


def test_multibinary_actions_are_independent_bernoullis() -> None:
    pytest.importorskip("ray")
    from rlsuite.integrations.rllib import MultiBinaryPPOCatalog, TorchMultiBernoulli

    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 1.0]])
    dist = TorchMultiBernoulli.from_logits(logits)
    actions = torch.tensor([[1, 0, 1], [0, 1, 0]], dtype=torch.int8)
    p = torch.sigmoid(logits)
    expected = torch.where(actions.bool(), p, 1 - p).log().sum(-1)
    torch.testing.assert_close(dist.logp(actions), expected)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(dist.entropy(), entropy)
    sample = dist.sample()
    assert sample.dtype == torch.int8 and sample.shape == (2, 3)
    assert set(sample.unique().tolist()) <= {0, 1}
    torch.testing.assert_close(
        dist.to_deterministic().sample(), (logits > 0).to(torch.int8), check_dtype=False
    )
    space = gym.spaces.MultiBinary(3)
    assert MultiBinaryPPOCatalog._get_dist_cls_from_action_space(space) is TorchMultiBernoulli
    assert TorchMultiBernoulli.required_input_dim(space) == 3


def test_rllib_ppo_on_multibinary_rmab(ray_local: None) -> None:
    from rlsuite.integrations.rllib import RLlibPPO

    def make() -> gym.vector.VectorEnv:
        return gym.make_vec(
            "rlsuite/CoRMAB-Budget-v0",
            num_envs=4,
            vectorization_mode="vector_entry_point",
            num_arms=6,
            budget=2,
            infeasible="project",
        )

    env = make()
    params = {"train_batch_size": 64, "kwargs": {"minibatch_size": 32, "num_epochs": 2}}
    agent = RLlibPPO(env, params, seed=0)
    try:
        agent.learn(128)
        obs, _ = env.reset(seed=1)
        greedy = agent.predict(obs)
        assert greedy.shape == (4, 6) and set(greedy.unique().tolist()) <= {0, 1}
        torch.testing.assert_close(agent.predict(obs), greedy)  # the mode: deterministic
        sampled = agent.predict(obs, deterministic=False)
        assert sampled.shape == (4, 6)
        env.step(greedy)
    finally:
        agent.close()


@pytest.mark.gpu
def test_rllib_ppo_learner_on_a_gpu(ray_local: None) -> None:
    # `pytest -m "ray and gpu"` on a CUDA machine in the Ray venv (ray.init sees the GPU)
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rlsuite.integrations.rllib import RLlibPPO

    env = _make_env()
    params = {
        "train_batch_size": 64,
        "num_gpus_per_learner": 1,
        "kwargs": {"minibatch_size": 32, "num_epochs": 1},
    }
    agent = RLlibPPO(env, params, seed=0)
    try:
        learner = agent.algo.learner_group._learner  # the local learner holds the GPU
        module = learner.module[DEFAULT_MODULE_ID]
        assert next(module.parameters()).device.type == "cuda"
        before = agent.state_dict()
        agent.learn(64)
        after = agent.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in after)
        obs, _ = env.reset(seed=1)
        assert agent.predict(obs).shape == (4,)
    finally:
        agent.close()
