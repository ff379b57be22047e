"""Any gymnasium environment as an rlsuite batched env (slower, same API).

rlsuite's command line and agents take a :class:`~rlsuite.vector.BatchedVectorEnv`. The ids
rlsuite ships have a native one; for every other registered gymnasium id (``CartPole-v1``, a
user's ``mypkg/MyEnv-v0``) :class:`SingleEnvBatch` steps ``num_envs`` copies of the single env
one after the other in Python and hands out torch tensors, so the SB3/RLlib agents and
rlsuite's own agents whose spaces fit train on it unchanged. It is the loop of
``gymnasium.vector.SyncVectorEnv`` plus a conversion to torch per step, so slower still (0.2–0.3×
on ``CartPole-v1`` at 1–4 envs, ``rlsuite bench CartPole-v1``); write a native batched env for
speed (README: "Write your own env").

Seeding follows rlsuite's convention: env ``i`` of ``reset(seed=s)`` is reset with seed ``s + i``
on its first episode and with a seed drawn from ``(s + i, episode)`` by
:mod:`rlsuite.keyed_random` on later ones, so its episodes do not depend on the batch. A
checkpoint holds the seeds and episode counters but not the wrapped envs' internal state (which
gymnasium does not expose): a resumed run starts new episodes from there.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlsuite import keyed_random
from rlsuite.vector import BatchedVectorEnv, Info

#: Observation and action spaces the adapter can carry as tensors.
SUPPORTED_SPACES = (
    gym.spaces.Box,
    gym.spaces.Discrete,
    gym.spaces.MultiBinary,
    gym.spaces.MultiDiscrete,
)


class SingleEnvBatch(BatchedVectorEnv):
    """``num_envs`` copies of ``gymnasium.make(env_id, **kwargs)`` as one batched env (see the
    module docstring). Observations are float32 tensors of the single env's shape (integer
    spaces converted); info entries that are numbers become ``(B,)`` tensors, others are
    dropped."""

    episode_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_envs, device)
        self.env_id = env_id
        self.envs = [gym.make(env_id, **kwargs) for _ in range(num_envs)]
        # as gymnasium.make_vec does: checkpoints record the id and kwargs from the spec
        self.spec = dataclasses.replace(gym.spec(env_id), kwargs=dict(kwargs))
        first = self.envs[0]
        for role, space in (
            ("observation", first.observation_space),
            ("action", first.action_space),
        ):
            if not isinstance(space, SUPPORTED_SPACES):
                raise ValueError(
                    f"{env_id}: its {role} space {space} is not supported by rlsuite's "
                    f"single-env batch (supported: {', '.join(s.__name__ for s in SUPPORTED_SPACES)})"
                )
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self._finish_spaces()
        self._obs = [np.zeros(first.observation_space.shape) for _ in range(num_envs)]

    def _reset_envs(self, ids: torch.Tensor) -> None:
        for i in ids.tolist():
            episode = int(self.episode_index[i])
            seed = int(self.env_seeds[i])
            if episode > 0:
                key = keyed_random.combine(self.env_seeds[i : i + 1], self.episode_index[i : i + 1])
                seed = int(key[0]) & ((1 << 31) - 1)
            self._obs[i], _ = self.envs[i].reset(seed=seed)

    def _observe(self) -> torch.Tensor:
        return torch.as_tensor(np.stack(self._obs), dtype=torch.float32, device=self.device)

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        acts = actions.cpu().numpy()
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, np.ndarray] = {}
        for i, env in enumerate(self.envs):
            action = acts[i]
            if isinstance(self.single_action_space, gym.spaces.Discrete):
                action = int(action)
            elif isinstance(self.single_action_space, gym.spaces.Box):
                action = action.astype(self.single_action_space.dtype)
            self._obs[i], rewards[i], terminated[i], truncated[i], info = env.step(action)
            for key, value in info.items():
                if isinstance(value, (bool, int, float, np.number, np.bool_)):
                    infos.setdefault(key, np.zeros(self.num_envs))[i] = float(value)
        as_t = lambda a: torch.as_tensor(a, device=self.device)  # noqa: E731
        return (
            as_t(rewards).float(),
            as_t(terminated),
            as_t(truncated),
            {k: as_t(v) for k, v in infos.items()},
        )

    def _as_action_tensor(self, actions: Any) -> torch.Tensor:
        space = self.single_action_space
        if isinstance(space, gym.spaces.Discrete):
            return super()._as_action_tensor(actions)
        tensor = torch.as_tensor(np.asarray(actions), device=self.device)
        tensor = tensor.reshape((self.num_envs, *space.shape))
        for i, row in enumerate(tensor.cpu().numpy()):
            if not space.contains(row.astype(space.dtype)):
                raise ValueError(f"env {i}: action {row.tolist()} is not in {space}")
        return tensor

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        # the wrapped envs' own state is not in a checkpoint: every env starts its next episode
        self.episode_index = self.episode_index + 1
        self._reset_envs(torch.arange(self.num_envs))
        self._needs_reset = torch.zeros_like(self._needs_reset)
        self.episode_step = torch.zeros_like(self.episode_step)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
