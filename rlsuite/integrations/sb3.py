"""Stable-Baselines3 on any rlsuite environment.

:class:`SB3VecEnv` adapts a native batched env to SB3's ``VecEnv``: numpy in and out, and
SB3's conventions at episode ends (same-step reset, the last observation in
``info["terminal_observation"]``, ``info["TimeLimit.truncated"]`` for truncations, which SB3's
on-policy algorithms bootstrap through). The agents ``sb3.PPO``, ``sb3.DQN`` and ``sb3.SAC``
wrap the SB3 algorithms in rlsuite's :class:`~rlsuite.agents.base.Agent` protocol, so a config
selects them like any other agent; their ``kwargs`` are SB3's own constructor arguments.

Checkpoints hold the policy's weights (tensors) and the config, loadable without unpickling.
A resumed SB3 run continues from those weights; optimizer moments and replay buffers are not
saved, so unlike rlsuite's own agents a resumed SB3 run is not bit-identical to an
uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

try:
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv
except ModuleNotFoundError as err:  # pragma: no cover - exercised without the extra
    raise ModuleNotFoundError(
        "the sb3.* agents need Stable-Baselines3: pip install 'rlsuite[sb3]'", name=err.name
    ) from err

from rlsuite.agents.base import Agent, Callback
from rlsuite.vector import BatchedVectorEnv


class SB3VecEnv(VecEnv):
    """A native rlsuite batched env seen as an SB3 ``VecEnv`` (see the module docstring)."""

    def __init__(self, env: BatchedVectorEnv) -> None:
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = [s for s in self._seeds if s is not None]
        seed = seeds[0] if seeds else None
        obs, _ = self.env.reset(seed=seed)
        self._reset_seeds()
        return obs.cpu().numpy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        done = terminated | truncated
        obs_np = obs.cpu().numpy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, value in info.items():
            if not key.startswith("_") and value.ndim == 1:
                for i, v in enumerate(value.cpu().tolist()):
                    infos[i][key] = v
        if bool(done.any()):
            done_np = done.cpu().numpy()
            truncated_np = (truncated & ~terminated).cpu().numpy()
            reset_obs, _ = self.env.reset(options={"reset_mask": done})
            reset_np = reset_obs.cpu().numpy()
            for i in np.flatnonzero(done_np):
                infos[i]["terminal_observation"] = obs_np[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(truncated_np[i])
            obs_np = np.where(done_np[:, None], reset_np.reshape(obs_np.shape), obs_np)
        return obs_np, reward.cpu().numpy().astype(np.float32), done.cpu().numpy(), infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any
    ) -> list[Any]:
        if method_name == "action_masks":  # per env, as sb3-contrib's get_action_masks stacks them
            masks = self.env.action_masks().cpu().numpy()
            return [masks[i] for i in self._get_indices(indices)]
        return [getattr(self.env, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs


class _Bridge(BaseCallback):
    """Calls an rlsuite callback after every SB3 env step."""

    def __init__(self, agent: SB3Agent, callback: Callback | None) -> None:
        super().__init__()
        self.agent, self.rlsuite_callback = agent, callback

    def _on_step(self) -> bool:
        self.agent.num_timesteps = int(self.model.num_timesteps)
        if self.rlsuite_callback is None:
            return True
        rewards = self.locals.get("rewards")
        metrics = {"reward": float(np.mean(rewards))} if rewards is not None else {}
        return self.rlsuite_callback(self.agent, metrics) is not False


@dataclass
class SB3Config:
    policy: str = "MlpPolicy"  # SB3 policy name
    kwargs: dict[str, Any] = field(
        default_factory=dict
    )  # SB3 constructor arguments (learning_rate, n_steps, ...)


class SB3Agent(Agent):
    """Common part of the ``sb3.*`` agents."""

    Config: ClassVar[type] = SB3Config
    algorithm: ClassVar[type]

    def __init__(self, env: BatchedVectorEnv, config: Any = None, *, seed: int = 0) -> None:
        super().__init__(env, config, seed=seed)
        self.vec_env = SB3VecEnv(env)
        self.vec_env.seed(self.seed)
        device = "cuda" if env.device.type == "cuda" else "cpu"
        try:
            self.model = self.algorithm(
                self.config.policy,
                self.vec_env,
                seed=self.seed,
                device=device,
                verbose=0,
                **self.config.kwargs,
            )
        except TypeError as err:
            raise ValueError(f"agent.params.kwargs for {self.name}: {err}") from err
        except AssertionError as err:  # SB3 asserts on unsupported spaces
            raise ValueError(
                f"{self.name} cannot train on {env.single_action_space}: {err}"
            ) from err

    def learn(self, total_steps: int, callback: Callback | None = None) -> SB3Agent:
        self.model.learn(total_steps, callback=_Bridge(self, callback), reset_num_timesteps=False)
        self.num_timesteps = int(self.model.num_timesteps)
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        as_tensor = isinstance(obs, torch.Tensor)
        obs_np = obs.cpu().numpy() if as_tensor else np.asarray(obs)
        actions, _ = self.model.predict(obs_np, deterministic=deterministic)
        if as_tensor:
            return torch.as_tensor(actions, device=obs.device)
        return actions

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"policy.{k}": v for k, v in self.model.policy.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        policy_state = {
            k.removeprefix("policy."): v for k, v in state.items() if k.startswith("policy.")
        }
        try:
            self.model.policy.load_state_dict(policy_state)
        except RuntimeError as err:
            raise ValueError(f"checkpoint does not fit this {self.name} policy: {err}") from err
        self.model.num_timesteps = self.num_timesteps


class SB3PPO(SB3Agent):
    """Proximal Policy Optimization (Schulman et al. 2017), SB3's implementation."""

    name = "sb3.PPO"
    algorithm = sb3.PPO


class SB3DQN(SB3Agent):
    """Deep Q-Network (Mnih et al. 2015), SB3's implementation; Discrete actions only."""

    name = "sb3.DQN"
    algorithm = sb3.DQN


class SB3MaskablePPO(SB3Agent):
    """PPO with invalid-action masking (Huang & Ontañón 2022), sb3-contrib's ``MaskablePPO``:
    for envs that publish ``info["action_mask"]``; the policy never samples a masked action."""

    name = "sb3.MaskablePPO"

    def __init__(self, env: BatchedVectorEnv, config: Any = None, *, seed: int = 0) -> None:
        if not getattr(env, "has_action_mask", False):
            raise ValueError(
                f"sb3.MaskablePPO needs an env with action masks, not {type(env).__name__}"
            )
        try:
            from sb3_contrib import MaskablePPO
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError(
                "sb3.MaskablePPO needs sb3-contrib: pip install 'rlsuite[sb3]'", name=err.name
            ) from err
        self.algorithm = MaskablePPO
        super().__init__(env, config, seed=seed)

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        as_tensor = isinstance(obs, torch.Tensor)
        obs_np = obs.cpu().numpy() if as_tensor else np.asarray(obs)
        masks = self.env.action_masks().cpu().numpy()
        actions, _ = self.model.predict(obs_np, deterministic=deterministic, action_masks=masks)
        return torch.as_tensor(actions, device=obs.device) if as_tensor else actions


class SB3SAC(SB3Agent):
    """Soft Actor-Critic (Haarnoja et al. 2018), SB3's implementation; Box actions only."""

    name = "sb3.SAC"
    algorithm = sb3.SAC
