"""``instance=[...]``: one pool of several instances, one drawn per episode by (seed, episode).

The demonstration: best fit over every shipped instance through one env plays each instance
exactly as a single-instance env does (the same fraction of time saved, bit for bit)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from rlsuite.envs.malloc import baselines
from rlsuite.envs.malloc.generators import random_instance
from rlsuite.envs.malloc.instances import save_instance, shipped_instances
from rlsuite.envs.malloc.vector import MallocGameVectorEnv, MallocPackVectorEnv, MallocVectorEnv

import rlsuite  # noqa: F401 - registers the ids

SMALL = ["vgg11-train-b8-r224", "squeezenet1_1-train-b8-r224", "resnet18-train-b8-r224"]


def seeds_covering(env: MallocVectorEnv) -> list[int]:
    """For each listed instance, the first seed whose first episode plays it (drawn by
    resetting ``env`` with consecutive seeds until every instance has come up)."""
    first: dict[int, int] = {}
    for start in range(0, 100 * env.num_envs, env.num_envs):
        _, info = env.reset(seed=start)
        for offset, index in enumerate(info["instance"].tolist()):
            first.setdefault(index, start + offset)
        if len(first) == len(env.instance_names):
            return [first[i] for i in range(len(env.instance_names))]
    raise AssertionError(
        f"instances {set(range(len(env.instance_names))) - set(first)} never drawn"
    )


def best_fit_per_instance(
    cls: type[MallocVectorEnv], names: list[str], metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """(list run, single runs) of best fit: ``metric`` per listed instance."""
    env = cls(num_envs=len(names), instance=names)
    seeds = seeds_covering(env)
    listed = baselines.episode_results("best-fit", lambda n: env, seeds)
    _, info = env.reset(seed=seeds)
    np.testing.assert_array_equal(info["instance"].numpy(), np.arange(len(names)))
    single = [
        baselines.episode_results("best-fit", lambda n, name=name: cls(n, instance=name), [0])
        for name in names
    ]
    return listed.metrics[metric], np.array([s.metrics[metric][0] for s in single])


@pytest.mark.slow
def test_best_fit_over_every_shipped_instance_equals_single_instance_runs() -> None:
    names = shipped_instances()
    assert len(names) >= 18
    listed, single = best_fit_per_instance(MallocGameVectorEnv, names, "time_saved")
    np.testing.assert_array_equal(listed, single)  # exactly, instance by instance
    by_name = dict(zip(names, listed.tolist(), strict=True))
    assert by_name["resnet18-train-b8-r224"] == pytest.approx(0.3854, abs=1e-4)
    assert by_name["vgg11-train-b8-r224"] == pytest.approx(0.2144, abs=1e-4)
    assert by_name["densenet121-train-b8-r224"] == pytest.approx(0.4573, abs=1e-4)
    assert by_name["swin_t-inference-b8-r224"] == pytest.approx(0.7057, abs=1e-4)


@pytest.mark.parametrize(
    ("cls", "metric"), [(MallocGameVectorEnv, "time_saved"), (MallocPackVectorEnv, "height_ratio")]
)
def test_a_pool_plays_each_instance_exactly_as_alone(cls: type, metric: str) -> None:
    listed, single = best_fit_per_instance(cls, SMALL, metric)
    np.testing.assert_array_equal(listed, single)
    if metric == "time_saved":  # resnet18's best fit, as in the README's baselines table
        assert listed[2] == pytest.approx(0.3854, abs=1e-4)
    else:
        assert (listed >= 1.0).all()


def test_one_pool_row_per_instance_and_the_names(tmp_path: Path) -> None:
    synthetic = random_instance(24, seed=4)
    save_instance(synthetic, tmp_path / "toy.csv")
    env = MallocGameVectorEnv(
        num_envs=6, instance=["resnet18-train-b8-r224", tmp_path / "toy.csv", synthetic]
    )
    # names come from the files (the sidecar's name) and may repeat: the index is the position
    assert env.instance_names == ("resnet18-train-b8-r224", synthetic.name, synthetic.name)
    assert env.tables.num_buffers.tolist() == [343, 24, 24]  # padded to 343 buffers
    assert env.tables.max_buffers == 343
    alone = MallocGameVectorEnv(instance=synthetic)
    assert env.single_observation_space == alone.single_observation_space
    assert env.single_action_space.n == alone.single_action_space.n == 17
    _, info = env.reset(seed=0)
    drawn = info["instance"]
    assert drawn.dtype == torch.int64 and drawn.shape == (6,)
    np.testing.assert_array_equal(env.state.pool.numpy(), drawn.numpy())
    for i, index in enumerate(drawn.tolist()):
        assert env.instance(i).name == env.instance_names[index]
    # a single instance is a pool of one; per-episode synthetic instances are index -1
    _, info = alone.reset(seed=0)
    assert alone.instance_names == (synthetic.name,) and info["instance"].tolist() == [0]
    per_episode = MallocGameVectorEnv(num_envs=2, instance_seed=None, num_buffers=8)
    _, info = per_episode.reset(seed=0)
    assert per_episode.instance_names == () and info["instance"].tolist() == [-1, -1]


def episode_instances(env: MallocVectorEnv, seed: int, steps: int) -> list[list[int]]:
    """Each env's sequence of instances (indices) over ``steps`` steps of first fit."""
    _, info = env.reset(seed=seed)
    episodes: list[list[int]] = [[i] for i in info["instance"].tolist()]
    policy = baselines.Baseline("first-fit", env)
    for _ in range(steps):
        *_, info = env.step(policy.predict(None))
        for i, played in enumerate(info["_instance"].tolist()):
            if not played:  # reset on this step: info has the last episode's instance
                episodes[i].append(env.instance_indices()[i].item())
    return episodes


def test_draws_follow_seed_and_episode_whatever_the_batch() -> None:
    big = MallocGameVectorEnv(num_envs=32, instance=SMALL)
    _, info = big.reset(seed=100)
    drawn = info["instance"].numpy()
    assert set(drawn.tolist()) == {0, 1, 2}  # 32 draws cover three instances
    for seed in (100, 117, 131):
        one = MallocGameVectorEnv(num_envs=1, instance=SMALL)
        _, info = one.reset(seed=seed)
        assert info["instance"].item() == drawn[seed - 100]
    # each new episode draws again, from (seed, episode index): the same in a batch of one
    batch = episode_instances(MallocPackVectorEnv(num_envs=4, instance=SMALL), 0, 700)
    assert min(len(s) for s in batch) >= 3  # vgg11 ends after 106 steps, resnet18 after 343
    assert len({tuple(s) for s in batch}) > 1
    for i, sequence in enumerate(batch):
        alone = episode_instances(MallocPackVectorEnv(num_envs=1, instance=SMALL), i, 700)
        assert alone == [sequence]


def test_info_names_the_instance_at_the_episode_end() -> None:
    env = MallocGameVectorEnv(num_envs=3, instance=SMALL)
    _, info = env.reset(seed=[7, 8, 9])
    start = info["instance"].clone()
    policy = baselines.Baseline("best-fit", env)
    ended = torch.zeros(3, dtype=torch.bool)
    while not bool(ended.all()):
        _, _, terminated, _, info = env.step(policy.predict(None))
        playing = ~ended
        np.testing.assert_array_equal(info["instance"][playing], start[playing])
        ended |= terminated
    single = gym.make("rlsuite/MallocGame-v0", instance=SMALL)
    _, info = single.reset(seed=7)
    assert info["instance"] == start[0].item()
    _, _, _, _, info = single.step(0)
    assert info["instance"] == start[0].item() and isinstance(info["instance"], int)
    assert single.unwrapped.instance_names == tuple(SMALL)
    assert single.unwrapped.instance.name == SMALL[start[0].item()]


def test_single_env_with_a_list_passes_check_env() -> None:
    env = gym.make("rlsuite/MallocPack-v0", instance=SMALL[:2])
    env.unwrapped.action_space.seed(0)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("cls", [MallocGameVectorEnv, MallocPackVectorEnv])
def test_checkpoint_restores_which_instance_each_env_plays(cls: type) -> None:
    names = SMALL[:2]
    env = cls(num_envs=4, instance=names)
    env.reset(seed=3)
    env.action_space.seed(0)
    for _ in range(150):  # past vgg11's end: some envs are in their second episode
        env.step(env.action_space.sample())
    assert env.episode_index.max().item() >= 1
    playing = env.instance_indices().clone()
    assert len(set(playing.tolist())) == 2
    state = env.state_dict()
    other = cls(num_envs=4, instance=names)
    other.reset(seed=50)  # playing other draws before the checkpoint is loaded
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.instance_indices().numpy(), playing.numpy())
    assert [other.instance(i).name for i in range(4)] == [env.instance(i).name for i in range(4)]
    for _ in range(300):  # and on, across autoresets and new draws
        actions = env.action_space.sample()
        a, b = env.step(actions), other.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
        np.testing.assert_array_equal(a[4]["instance"].numpy(), b[4]["instance"].numpy())
    # an env built on another list refuses the checkpoint
    swapped = cls(num_envs=4, instance=names[::-1])
    with pytest.raises(ValueError, match="instance this env does not hold"):
        swapped.load_state_dict(state)


def test_bad_lists_name_the_bad_element(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="instance is an empty list; give at least one"):
        MallocGameVectorEnv(instance=[])
    with pytest.raises(ValueError, match=r"instance\[1\] = 'no-such-model' cannot be loaded: .*"):
        MallocGameVectorEnv(instance=["resnet18-train-b8-r224", "no-such-model"])
    bad = tmp_path / "bad.csv"
    bad.write_text("id,lower,upper,size\n0,2,2,8\n")
    with pytest.raises(ValueError, match=r"instance\[0\] = '.*bad.csv' cannot be loaded: .*range"):
        MallocPackVectorEnv(instance=(bad, "vgg11-train-b8-r224"))
    with pytest.raises(ValueError, match=r"instance\[2\] = 7 \(int\) is not a shipped name"):
        MallocGameVectorEnv(instance=["vgg11-train-b8-r224", random_instance(8, seed=0), 7])
    with pytest.raises(ValueError, match=r"instance must be a shipped name, .* got set"):
        MallocGameVectorEnv(instance={"vgg11-train-b8-r224"})


@pytest.mark.gpu
def test_cuda_draws_and_plays_as_cpu() -> None:
    cpu = MallocGameVectorEnv(num_envs=6, instance=SMALL)
    gpu = MallocGameVectorEnv(num_envs=6, instance=SMALL, device="cuda")
    _, info_c = cpu.reset(seed=0)
    _, info_g = gpu.reset(seed=0)
    policy_c, policy_g = baselines.Baseline("best-fit", cpu), baselines.Baseline("best-fit", gpu)
    for _ in range(400):  # across autoresets and new draws
        np.testing.assert_array_equal(info_g["instance"].cpu().numpy(), info_c["instance"].numpy())
        *_, reward_c, _, _, info_c = cpu.step(policy_c.predict(None))
        *_, reward_g, _, _, info_g = gpu.step(policy_g.predict(None))
        np.testing.assert_allclose(reward_g.cpu().numpy(), reward_c.numpy(), atol=1e-7)


def test_a_position_of_any_listed_instance_starts_any_env() -> None:
    """The list shares one pool, so reset(options={"state"}) may move an env to another listed
    instance; its observation is then that position's, and the game continues there."""
    insts = [random_instance(8, None, seed) for seed in (0, 1)]
    env = MallocGameVectorEnv(num_envs=2, instance=insts)
    env.reset(seed=0)
    rows = env.state.pool.clone()
    seed = 1
    while bool(rows[0] == rows[1]):  # find seeds under which the two envs play other instances
        env.reset(seed=seed)
        rows, seed = env.state.pool.clone(), seed + 1
    position = env.get_state(0)
    obs, info = env.reset(options={"state": position, "reset_mask": [False, True]})
    assert torch.equal(obs[1], env.observe_states(position)[0])
    assert int(env.state.pool[1]) == int(rows[0])
    assert int(info["instance"][1]) == int(info["instance"][0])
    actions = torch.zeros(2, dtype=torch.int64)  # slow memory: always legal
    nxt = env.step_from(env.get_state(), actions)
    obs, reward, *_ = env.step(actions)
    assert torch.equal(obs, env.observe_states(nxt.next_states))
    assert torch.equal(reward, nxt.rewards)
