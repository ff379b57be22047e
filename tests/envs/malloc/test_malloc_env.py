"""The mallocGame environments: gymnasium contract, seeding, batch == single, the search model,
checkpoints and clear errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from layout_checks import check_final_layout, fraction_of_time_saved
from rlsuite.envs.malloc.env import MallocGameEnv, MallocPackEnv
from rlsuite.envs.malloc.generators import random_instance
from rlsuite.envs.malloc.instances import save_instance
from rlsuite.envs.malloc.observation import ObservationLayout
from rlsuite.envs.malloc.vector import MallocGameVectorEnv, MallocPackVectorEnv

import rlsuite  # noqa: F401 - registers the ids

IDS = ["rlsuite/MallocGame-v0", "rlsuite/MallocPack-v0"]


def legal_rollout(env: gym.Env, seed: int, rng: np.random.Generator) -> tuple[list, float]:
    obs, info = env.reset(seed=seed)
    trajectory, total = [obs], 0.0
    while True:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward, terminated, truncated, info = env.step(action)
        trajectory += [obs, reward, action]
        total += reward
        assert not truncated
        if terminated:
            return trajectory, total


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_and_a_legal_episode(env_id: str) -> None:
    env = gym.make(env_id)
    # check_env samples its step-determinism action before resetting: seeded, so the sampled
    # action is the same every run (legality depends on the state it is sampled in)
    env.unwrapped.action_space.seed(0)
    check_env(env.unwrapped, skip_render_check=True)
    trajectory, total = legal_rollout(env, 0, np.random.default_rng(0))
    core = env.unwrapped.core
    assert len(trajectory) == 1 + 3 * core.instance().num_buffers
    for obs in trajectory[0:1] + trajectory[1::3]:
        assert env.observation_space.contains(obs)
    offsets = env.unwrapped.buffer_offsets()
    if env_id.endswith("Game-v0"):
        check_final_layout(core.instance(), offsets, core.fast_capacity(core.instance()))
        assert total == pytest.approx(fraction_of_time_saved(core.instance(), offsets), abs=1e-6)
    else:
        check_final_layout(core.instance(), offsets, None)
        height = (offsets + core.instance().size).max()
        assert -total == pytest.approx(height / core.instance().peak_live_bytes, rel=1e-6)


@pytest.mark.parametrize("env_id", IDS)
def test_buffer_offsets_and_observation_layout_have_distinct_names(env_id: str) -> None:
    """The memory map is ``buffer_offsets()`` (single env) / ``buffer_offsets(i)`` (core); the
    name ``layout`` belongs to the observation layout alone (they were ``layout()`` and
    ``layout_of(i)``, next to ``core.layout``, an ``ObservationLayout``)."""
    env = gym.make(env_id)
    legal_rollout(env, 1, np.random.default_rng(1))
    core = env.unwrapped.core
    offsets = env.unwrapped.buffer_offsets()
    np.testing.assert_array_equal(offsets, core.buffer_offsets(0))
    np.testing.assert_array_equal(offsets, core.buffer_offsets(0, core.get_state(0)))
    assert offsets.shape == (core.instance().num_buffers,) and (offsets >= 0).any()
    assert isinstance(core.layout, ObservationLayout)
    assert not hasattr(env.unwrapped, "layout") and not hasattr(core, "layout_of")


@pytest.mark.parametrize("env_id", IDS)
def test_action_space_samples_legal_actions(env_id: str) -> None:
    env = gym.make(env_id)
    _, info = env.reset(seed=3)
    env.action_space.seed(0)
    for _ in range(40):
        action = env.action_space.sample()
        assert info["action_mask"][action]
        _, _, terminated, _, info = env.step(action)
        if terminated:
            _, info = env.reset()


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    runs = [
        legal_rollout(gym.make(env_id, instance_seed=None), 5, np.random.default_rng(1))
        for _ in range(2)
    ]
    for x, y in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cls", [MallocGameVectorEnv, MallocPackVectorEnv])
@pytest.mark.parametrize("instance_seed", [0, None])
def test_batched_core_equals_single_env(cls: type, instance_seed: int | None) -> None:
    """A batch of 4 and 4 single envs on the same seeds and actions, across an autoreset."""
    single_cls = MallocGameEnv if cls is MallocGameVectorEnv else MallocPackEnv
    kwargs = {"num_buffers": 12, "num_ops": 10, "instance_seed": instance_seed}
    batch = cls(num_envs=4, **kwargs)
    singles = [single_cls(**kwargs) for _ in range(4)]
    obs, info = batch.reset(seed=20)
    single_obs = [s.reset(seed=20 + i) for i, s in enumerate(singles)]
    rng = np.random.default_rng(0)
    done = np.zeros(4, dtype=bool)
    for _ in range(30):  # longer than an episode: crosses the next-step autoreset
        for i, (o, i_info) in enumerate(single_obs):
            np.testing.assert_array_equal(obs[i].numpy(), o)
            np.testing.assert_array_equal(info["action_mask"][i].numpy(), i_info["action_mask"])
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in info["action_mask"].numpy()])
        obs, reward, terminated, _, info = batch.step(actions)
        for i, s in enumerate(singles):
            if done[i]:
                single_obs[i] = s.reset()
                assert reward[i] == 0.0
                continue
            o, r, term, _, i_info = s.step(int(actions[i]))
            assert float(reward[i]) == pytest.approx(r, abs=1e-12)
            assert bool(terminated[i]) == term
            single_obs[i] = (o, i_info)
        done = terminated.numpy()


def test_per_episode_instances_follow_the_seed() -> None:
    env = MallocGameVectorEnv(num_envs=3, instance_seed=None, num_buffers=16)
    env.reset(seed=0)
    sizes = [env.instance(i).size.copy() for i in range(3)]
    assert not np.array_equal(sizes[0], sizes[1])
    again = MallocGameVectorEnv(num_envs=1, instance_seed=None, num_buffers=16)
    again.reset(seed=1)
    np.testing.assert_array_equal(again.instance(0).size, sizes[1])


@pytest.mark.parametrize("cls", [MallocGameVectorEnv, MallocPackVectorEnv])
def test_get_set_state_and_step_from_agree_with_stepping(cls: type) -> None:
    env = cls(num_envs=2, num_buffers=20)
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    pick = lambda mask: np.array([rng.choice(np.flatnonzero(m)) for m in mask.numpy()])  # noqa: E731
    for _ in range(5):
        _, _, _, _, info = env.step(pick(info["action_mask"]))
    saved = env.get_state()
    actions = pick(info["action_mask"])
    nxt, rewards, _, masks = env.step_from(saved, actions)
    obs, reward, _, _, info = env.step(actions)
    np.testing.assert_allclose(rewards.float().numpy(), reward.numpy())
    np.testing.assert_array_equal(masks.numpy(), info["action_mask"].numpy())
    np.testing.assert_array_equal(env.observe_states(nxt).numpy(), obs.numpy())
    # the model without observation caches gives the same transition
    lean, lean_rewards, *_ = env.step_from(saved.without_observation(), actions)
    np.testing.assert_array_equal(lean.offset.numpy(), nxt.offset.numpy())
    np.testing.assert_array_equal(lean_rewards.numpy(), rewards.numpy())
    # restoring a state replays the same future
    env.set_state(saved)
    obs_again, reward_again, *_ = env.step(actions)
    np.testing.assert_array_equal(obs_again.numpy(), obs.numpy())
    np.testing.assert_array_equal(reward_again.numpy(), reward.numpy())
    # the single env exposes the same model: restoring a state taken mid-episode replays it
    single = (MallocGameEnv if cls is MallocGameVectorEnv else MallocPackEnv)(num_buffers=20)
    _, info = single.reset(seed=0)
    for _ in range(3):
        _, _, _, _, info = single.step(int(np.flatnonzero(info["action_mask"])[-1]))
    mid = single.get_state()
    action = int(np.flatnonzero(info["action_mask"])[0])
    obs_a, reward_a, *_ = single.step(action)
    for _ in range(2):
        single.step(0)
    single.set_state(mid)
    obs_b, reward_b, *_ = single.step(action)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert reward_a == reward_b


def assert_same_state(a, b) -> None:
    for key, value in a.to_dict().items():
        np.testing.assert_array_equal(value.numpy(), getattr(b, key).numpy(), err_msg=key)


def test_states_from_other_instances_and_bad_indices_are_refused() -> None:
    env = MallocGameVectorEnv(num_envs=2, instance_seed=0)
    other = MallocGameVectorEnv(num_envs=2, instance_seed=1)
    env.reset(seed=0)
    other.reset(seed=0)
    with pytest.raises(ValueError, match="taken on an instance this env does not hold"):
        env.set_state(other.get_state())
    with pytest.raises(ValueError, match="taken on an instance this env does not hold"):
        env.step_from(other.get_state(), [0, 0])
    smaller = MallocGameVectorEnv(num_envs=2, num_buffers=12)
    smaller.reset(seed=0)
    with pytest.raises(ValueError, match="the state is from another env"):
        env.set_state(smaller.get_state())
    with pytest.raises(ValueError, match="the state is from another env"):
        env.load_state_dict(smaller.state_dict())
    with pytest.raises(ValueError, match=r"index must be an env index in \[0, 1\]"):
        env.get_state(2)
    with pytest.raises(ValueError, match="actions must be integers"):
        env.step_from(env.get_state(), [0.0, 1.7])
    with pytest.raises(ValueError, match="needs a state with its observation caches"):
        env.set_state(env.get_state().without_observation())
    with pytest.raises(ValueError, match="2 positions need as many actions"):
        env.step_from(env.get_state(), [0])
    # a per-episode instance that has been replaced makes old positions stale
    changing = MallocGameVectorEnv(num_envs=1, instance_seed=None, num_buffers=8)
    changing.reset(seed=0)
    old = changing.get_state()
    changing.reset(seed=1)
    with pytest.raises(ValueError, match="has since been replaced"):
        changing.step_from(old, [0])


def test_illegal_actions_are_refused_and_change_nothing() -> None:
    env = MallocGameVectorEnv(num_envs=2, num_buffers=30)
    _, info = env.reset(seed=0)
    for _ in range(10):  # the highest legal offset each time
        highest = [int(np.flatnonzero(m)[-1]) for m in info["action_mask"].numpy()]
        _, _, _, _, info = env.step(np.array(highest))
    mask = info["action_mask"]
    illegal = np.flatnonzero(~mask[0].numpy())
    assert illegal.size, "expected some masked actions after 10 placements"
    before = env.get_state()
    with pytest.raises(
        ValueError, match=r"illegal mallocGame action — env 0: action \d+ \(legal: \["
    ):
        env.step(np.array([illegal[0], 0]))
    after = env.get_state()
    np.testing.assert_array_equal(after.offset.numpy(), before.offset.numpy())
    np.testing.assert_array_equal(after.step.numpy(), before.step.numpy())
    with pytest.raises(ValueError, match=r"actions must be integers in \[0, 16\]"):
        env.step(np.array([17, 0]))
    with pytest.raises(ValueError, match="must be integers"):
        env.step(np.array([0.5, 0]))
    single = MallocPackEnv(num_buffers=30)
    single.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an int"):
        single.step(np.array([0, 1]))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="generator must be one of"):
        MallocGameVectorEnv(generator="lumpy")
    with pytest.raises(ValueError, match="capacity_fraction must be in"):
        MallocGameVectorEnv(capacity_fraction=1.5)
    with pytest.raises(ValueError, match="max_offsets must be a positive int"):
        MallocPackVectorEnv(max_offsets=0)
    with pytest.raises(ValueError, match="does not exist; give a CSV path or one of the shipped"):
        MallocGameVectorEnv(instance="no-such-model")


def test_instance_from_a_file_and_capacity_in_bytes(tmp_path) -> None:
    inst = random_instance(24, seed=4)
    save_instance(inst, tmp_path / "p.csv")
    env = MallocGameVectorEnv(instance=str(tmp_path / "p.csv"), capacity=4096)
    obs, _ = env.reset(seed=0)
    assert env.fast_capacity(env.instance()) == 4096.0
    np.testing.assert_array_equal(env.instance().size, inst.size)
    parts = env.layout.split(obs)
    assert parts["occupancy"].shape == (1, 32, 64) and parts["buffers"].shape == (1, 5, 5)
    # the current buffer's features: present, start / T, end / T
    first = env.tables.file_index[0, 0].item()
    assert parts["buffers"][0, 0, 0] == 1.0
    assert parts["buffers"][0, 0, 1].item() == pytest.approx(inst.lower[first] / inst.num_ops)


@pytest.mark.parametrize("cls", [MallocGameVectorEnv, MallocPackVectorEnv])
def test_checkpoint_round_trip_continues_identically(cls: type) -> None:
    env = cls(num_envs=3, instance_seed=None, num_buffers=10)
    env.reset(seed=4)
    env.action_space.seed(0)
    for _ in range(13):
        env.step(env.action_space.sample())
    state = env.state_dict()
    saved = {k: v.clone() for k, v in state.items()}
    other = cls(num_envs=3, instance_seed=None, num_buffers=10)
    other.load_state_dict(state)
    for _ in range(12):  # across the next autoreset
        actions = env.action_space.sample()
        a, b = env.step(actions), other.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
    for key, value in saved.items():  # stepping the loaded env did not write into the dict
        np.testing.assert_array_equal(state[key].numpy(), value.numpy(), err_msg=key)
    with pytest.raises(ValueError, match="expected"):
        other.load_state_dict({"env_seeds": torch.zeros(3)})


def test_the_autoreset_step_ignores_its_action() -> None:
    """Next-step autoreset: the step after an episode's end resets it, whatever the action."""
    env = MallocGameVectorEnv(num_envs=1, num_buffers=4)
    env.reset(seed=0)
    for _ in range(4):
        _, _, terminated, _, _ = env.step(np.array([0]))
    assert bool(terminated[0])
    _, reward, terminated, _, info = env.step(np.array([3]))
    assert float(reward[0]) == 0.0 and not bool(terminated[0])
    assert env.state.step.item() == 0 and bool(info["action_mask"][0, 0])


def test_masks_handed_out_are_copies() -> None:
    env = MallocGameVectorEnv(num_envs=1)
    _, info = env.reset(seed=0)
    info["action_mask"][:] = True
    assert not bool(env.action_masks()[0, -1])


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [MallocGameVectorEnv, MallocPackVectorEnv])
def test_cuda_env_matches_cpu(cls: type) -> None:
    kwargs = {"num_buffers": 24, "instance_seed": None}
    cpu, gpu = cls(num_envs=8, **kwargs), cls(num_envs=8, device="cuda", **kwargs)
    obs_c, info_c = cpu.reset(seed=0)
    obs_g, info_g = gpu.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(40):  # across autoresets and per-episode instances
        np.testing.assert_allclose(obs_g.cpu().numpy(), obs_c.numpy(), atol=1e-6)
        np.testing.assert_array_equal(
            info_g["action_mask"].cpu().numpy(), info_c["action_mask"].numpy()
        )
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in info_c["action_mask"].numpy()])
        _, rewards, _, _ = gpu.step_from(gpu.get_state(), torch.as_tensor(actions, device="cuda"))
        obs_c, r_c, _, _, info_c = cpu.step(actions)
        obs_g, r_g, _, _, info_g = gpu.step(torch.as_tensor(actions, device="cuda"))
        np.testing.assert_allclose(r_g.cpu().numpy(), r_c.numpy(), atol=1e-7)
        np.testing.assert_allclose(rewards.float().cpu().numpy(), r_c.numpy(), atol=1e-7)
