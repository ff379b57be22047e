"""Shared by the bandit agents' tests: the SOR env, context batches, and the save / kill / resume
runs of ``test_save_load_predicts_the_same`` and ``test_killed_and_resumed_run_is_identical``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from rlsuite.runs import load_checkpoint, save_checkpoint
from rlsuite.training import ENV_PREFIX, env_state_tensors

ENV_ID = "rlsuite/SOR-ShiftedLaplacian-v0"
RUN = {"sequence_length": 300, "n": 6, "variance": "high"}
"""The save/resume runs: 300 high-variance systems on n = 6 grids (a solve takes milliseconds)."""


def make_env(num_envs: int = 1, **kwargs: Any) -> Any:
    return gym.make_vec(
        ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )


def context_batch(contexts: Any) -> torch.Tensor:
    contexts = torch.as_tensor(contexts, dtype=torch.float32)
    return torch.stack([contexts, *[torch.zeros_like(contexts)] * 3], dim=1)


def assert_states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def learn_uninterrupted(cls: Any, seed: int) -> dict[str, Any]:
    """300 steps of ``cls`` on ``RUN`` in one go: the agent, its env and the rewards it saw."""
    env = make_env(**RUN)
    agent = cls(env, seed=seed)
    rewards: list[float] = []
    agent.learn(300, callback=lambda _, m: rewards.append(m["reward"]) is None)
    return {"cls": cls, "agent": agent, "env": env, "rewards": rewards}


def learn_until_150(cls: Any, seed: int, rewards: list[float]) -> tuple[Any, Any]:
    """A run of 300 steps of ``cls`` on ``RUN`` that its callback stops after step 150 (appending
    every reward to ``rewards``): the agent and its env."""
    env = make_env(**RUN)
    agent = cls(env, seed=seed)

    def stop_at_150(a: Any, m: Any) -> bool:
        rewards.append(m["reward"])
        return a.num_timesteps < 150

    agent.learn(300, callback=stop_at_150)
    return agent, env


def kill_and_reload(agent: Any, env: Any, tmp_path: Path) -> tuple[Any, Any]:
    """Save a training checkpoint (agent and env), drop both (the "kill"), and load a new env
    and agent from the file: the resumed agent and its env."""
    cls = type(agent)
    path = save_checkpoint(
        tmp_path / "step150.pt",
        {**agent.checkpoint_tensors(), **env_state_tensors(env)},
        agent.metadata(),
    )
    tensors, _ = load_checkpoint(path)  # the "kill": only the file goes on
    env = make_env(**RUN)
    env.load_state_dict(
        {k[len(ENV_PREFIX) :]: v for k, v in tensors.items() if k.startswith(ENV_PREFIX)}
    )
    return cls.load(path, env), env
