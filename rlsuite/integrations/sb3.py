"""Stable-Baselines3 on any rlsuite environment.

:class:`SB3VecEnv` adapts a native batched env to SB3's ``VecEnv``: numpy in and out, and
SB3's conventions at episode ends (same-step reset, the last observation in
``info["terminal_observation"]``, ``info["TimeLimit.truncated"]`` for truncations, which SB3's
on-policy algorithms bootstrap through). The agents ``sb3.PPO``, ``sb3.DQN`` and ``sb3.SAC``
wrap the SB3 algorithms in rlsuite's :class:`~rlsuite.agents.base.Agent` protocol, so a config
selects them like any other agent; their ``kwargs`` are SB3's own constructor arguments.

Checkpoints hold, as tensors (loadable without unpickling): the policy's weights, every
optimizer's state (Adam moments and step counts; SAC's entropy coefficient and its optimizer),
the observation and episode-start flags SB3 acts on next (so a resumed run continues the env's
episode stream from the checkpoint's env state instead of resetting it to episode 0), SB3's
counters, the global torch and numpy random states and the action space's generator, and for
the off-policy agents (``sb3.DQN``, ``sb3.SAC``) the filled part of the replay buffer together
with the transition of the checkpoint's own step, which SB3 had not stored yet.

**What still differs from an uninterrupted run.** SB3 saves at a callback inside its collection
loop, so after a resume:

- ``sb3.PPO`` / ``sb3.MaskablePPO``: the rollout in progress at the checkpoint is discarded (it
  is never trained on) and the resumed run collects a full ``n_steps`` rollout from the
  checkpoint's step, so its update boundaries shift by the discarded part;
- ``sb3.DQN`` / ``sb3.SAC``: the gradient steps due right after the checkpoint's step (when it
  ends a ``train_freq`` period) are not taken, and the ``train_freq`` count restarts at the
  resume; the replay buffer, the target network (DQN's update at that step included), the
  exploration schedule and the random states continue;
- the SB3 logger's rolling episode statistics (``ep_info_buffer``) start empty.

Before ``learning_starts`` (random actions, no updates) a resumed off-policy run is identical
to an uninterrupted one (``tests/reliability/test_sb3_resume.py``).
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
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
    from stable_baselines3.common.utils import polyak_update
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv
except ModuleNotFoundError as err:  # pragma: no cover - exercised without the extra
    raise ModuleNotFoundError(
        "the sb3.* agents need Stable-Baselines3: pip install 'rlsuite[sb3]'", name=err.name
    ) from err

from rlsuite.agents.base import Agent, Callback
from rlsuite.agents.heuristic import _generator_state, _set_generator_state
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
        # this step as SB3 sees it before it is processed (a checkpoint now stores it as done)
        self.agent._pending = self.locals
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
        self._pending: dict[str, Any] | None = None  # SB3's locals at the latest step

    @classmethod
    def check_env(cls, env: BatchedVectorEnv) -> None:
        """An env with illegal actions (``action_mask``) needs ``sb3.MaskablePPO``."""
        if getattr(env, "has_action_mask", False) and cls.name != "sb3.MaskablePPO":
            raise ValueError(
                f"{cls.name} ignores action masks, but {type(env).__name__} has illegal actions "
                "(info['action_mask']); use sb3.MaskablePPO"
            )

    def learn(self, total_steps: int, callback: Callback | None = None) -> SB3Agent:
        try:
            self.model.learn(
                total_steps, callback=_Bridge(self, callback), reset_num_timesteps=False
            )
        finally:
            self._pending = None  # SB3 finished processing its last step (or stopped)
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
        model = self.model
        state = {f"policy.{k}": v for k, v in model.policy.state_dict().items()}
        for name, optimizer in self._optimizers().items():
            for index, values in optimizer.state_dict()["state"].items():
                for key, value in values.items():
                    state[f"optim.{name}.{index}.{key}"] = torch.as_tensor(value)
        if getattr(model, "log_ent_coef", None) is not None:
            state["sb3.log_ent_coef"] = model.log_ent_coef.detach()
        pending = self._pending
        off_policy = isinstance(model, OffPolicyAlgorithm)
        if pending is not None and not off_policy:  # on-policy: the rollout is discarded
            state["sb3.last_obs"] = torch.as_tensor(pending["new_obs"])
            state["sb3.last_episode_starts"] = torch.as_tensor(pending["dones"])
        elif model._last_obs is not None:
            state["sb3.last_obs"] = torch.as_tensor(model._last_obs)
            state["sb3.last_episode_starts"] = torch.as_tensor(model._last_episode_starts)
        counters = [model._n_updates, model._episode_num, getattr(model, "_n_calls", 0)]
        if off_policy:
            buffer = model.replay_buffer
            size = buffer.buffer_size if buffer.full else buffer.pos
            for key in _REPLAY_ARRAYS:
                if hasattr(buffer, key):
                    state[f"replay.{key}"] = torch.from_numpy(np.array(getattr(buffer, key)[:size]))
            state["replay.pos_full"] = torch.tensor([buffer.pos, int(buffer.full)])
            if pending is not None:  # the step SB3 stores after this callback
                dones = np.asarray(pending["dones"], dtype=bool)
                terminal = np.array(pending["new_obs"], copy=True)
                truncated = np.zeros(len(dones), dtype=bool)
                for i in np.flatnonzero(dones):
                    terminal[i] = pending["infos"][i]["terminal_observation"]
                    truncated[i] = pending["infos"][i].get("TimeLimit.truncated", False)
                state |= {
                    "sb3.pending.obs": torch.as_tensor(model._last_obs),
                    "sb3.pending.new_obs": torch.as_tensor(pending["new_obs"]),
                    "sb3.pending.buffer_actions": torch.as_tensor(pending["buffer_actions"]),
                    "sb3.pending.rewards": torch.as_tensor(pending["rewards"]),
                    "sb3.pending.dones": torch.as_tensor(dones),
                    "sb3.pending.terminal_obs": torch.as_tensor(terminal),
                    "sb3.pending.truncated": torch.as_tensor(truncated),
                }
        state["sb3.counters"] = torch.tensor(counters, dtype=torch.int64)
        state["rng.torch"] = torch.get_rng_state()
        _, keys, pos, has_gauss, gauss = np.random.get_state()
        state["rng.numpy_mt19937"] = torch.from_numpy(keys.astype(np.int64))
        state["rng.numpy_extra"] = torch.tensor([pos, has_gauss, gauss], dtype=torch.float64)
        state["rng.action_space"] = _generator_state(model.action_space.np_random)
        return state

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        model = self.model
        found = {
            "policy": getattr(model.policy, "optimizer", None),
            "actor": getattr(getattr(model, "actor", None), "optimizer", None),
            "critic": getattr(getattr(model, "critic", None), "optimizer", None),
            "ent_coef": getattr(model, "ent_coef_optimizer", None),
        }
        return {k: v for k, v in found.items() if isinstance(v, torch.optim.Optimizer)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """The policy's weights, and (from checkpoints that hold them) the optimizers, counters,
        random states, the next observation and, when the batch size matches, the replay
        buffer; see the module docstring for what a resumed run still does differently."""
        model = self.model
        policy_state = {
            k.removeprefix("policy."): v for k, v in state.items() if k.startswith("policy.")
        }
        try:
            model.policy.load_state_dict(policy_state)
        except RuntimeError as err:
            raise ValueError(f"checkpoint does not fit this {self.name} policy: {err}") from err
        model.num_timesteps = self.num_timesteps
        for name, optimizer in self._optimizers().items():
            prefix = f"optim.{name}."
            entries: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in state.items():
                if key.startswith(prefix):
                    index, _, field_name = key[len(prefix) :].partition(".")
                    entries.setdefault(int(index), {})[field_name] = value
            if entries:
                groups = optimizer.state_dict()["param_groups"]
                try:
                    optimizer.load_state_dict({"state": entries, "param_groups": groups})
                except (ValueError, KeyError, RuntimeError) as err:
                    raise ValueError(
                        f"checkpoint's {name} optimizer state does not fit: {err}"
                    ) from None
        if "sb3.log_ent_coef" in state and getattr(model, "log_ent_coef", None) is not None:
            with torch.no_grad():
                model.log_ent_coef.copy_(state["sb3.log_ent_coef"])
        if "rng.torch" in state:
            torch.set_rng_state(state["rng.torch"])
            extra = state["rng.numpy_extra"].tolist()
            keys = state["rng.numpy_mt19937"].numpy().astype(np.uint32)
            np.random.set_state(("MT19937", keys, int(extra[0]), int(extra[1]), extra[2]))
            _set_generator_state(model.action_space.np_random, state["rng.action_space"])
        if "sb3.counters" in state:
            model._n_updates, model._episode_num, n_calls = state["sb3.counters"].tolist()
            if hasattr(model, "_n_calls"):
                model._n_calls = n_calls
        num_envs = self.vec_env.num_envs
        same_batch = "sb3.last_obs" in state and state["sb3.last_obs"].shape[0] == num_envs
        if not same_batch:  # e.g. evaluation on another batch size: nothing to continue
            return
        model._last_obs = state["sb3.last_obs"].numpy()
        model._last_episode_starts = state["sb3.last_episode_starts"].numpy()
        if isinstance(model, OffPolicyAlgorithm):
            model._last_original_obs = model._last_obs
            self._load_replay(state)

    def _load_replay(self, state: Mapping[str, torch.Tensor]) -> None:
        model, buffer = self.model, self.model.replay_buffer
        if "replay.pos_full" not in state:
            return
        pos, full = state["replay.pos_full"].tolist()
        size = buffer.buffer_size if full else pos
        for key in _REPLAY_ARRAYS:
            name = f"replay.{key}"
            if name in state and hasattr(buffer, key):
                target = getattr(buffer, key)
                value = state[name].numpy()
                if value.shape != (size, *target.shape[1:]):
                    raise ValueError(
                        f"checkpoint's replay buffer {key} has shape {value.shape}, this "
                        f"{self.name} buffer holds {(size, *target.shape[1:])}"
                    )
                target[:size] = value
        buffer.pos, buffer.full = int(pos), bool(full)
        if "sb3.pending.obs" not in state:
            return
        dones = state["sb3.pending.dones"].numpy()
        terminal = state["sb3.pending.terminal_obs"].numpy()
        truncated = state["sb3.pending.truncated"].numpy()
        infos: list[dict[str, Any]] = [
            {"terminal_observation": terminal[i], "TimeLimit.truncated": bool(truncated[i])}
            if dones[i]
            else {}
            for i in range(len(dones))
        ]
        model._last_obs = model._last_original_obs = state["sb3.pending.obs"].numpy()
        model._store_transition(
            buffer,
            state["sb3.pending.buffer_actions"].numpy(),
            state["sb3.pending.new_obs"].numpy(),
            state["sb3.pending.rewards"].numpy(),
            dones,
            infos,
        )
        model._episode_num += int(dones.sum())
        if hasattr(model, "_n_calls") and hasattr(model, "q_net_target"):  # DQN._on_step
            model._n_calls += 1
            if model._n_calls % max(model.target_update_interval // model.n_envs, 1) == 0:
                polyak_update(model.q_net.parameters(), model.q_net_target.parameters(), model.tau)
                polyak_update(model.batch_norm_stats, model.batch_norm_stats_target, 1.0)


_REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


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
