"""RLlib (Ray) on any rlsuite env: env ids by name; ``rllib.PPO`` and ``rllib.DQN`` as agents.

**Environments.** RLlib's new API stack samples with ``SingleAgentEnvRunner``, which builds its
envs with ``gymnasium.make_vec(name, num_envs=num_envs_per_env_runner,
vectorization_mode=config.gym_env_vectorize_mode)`` and wraps the result in gymnasium's
``DictInfoToList``. With ``config.env_runners(gym_env_vectorize_mode="vector_entry_point")`` and
a name registered in Tune's env registry, RLlib calls the registered creator once per runner
with ``env_config | {"num_envs": num_envs_per_env_runner}`` and expects a
``gymnasium.vector.VectorEnv`` back. :func:`register_rllib_envs` registers every rlsuite id
there under its own name, with a creator that returns the *native batched env* (one
:class:`~rlsuite.vector.BatchedVectorEnv`, stepped by tensor operations; no per-env Python
loop, no subprocesses) behind :class:`NumpyVectorEnv`, a thin view that gives RLlib what it
expects: numpy observations, rewards, flags and infos, numpy actions in, next-step autoreset
(the native env's own mode, which is also the one RLlib's runner assumes). Without the
``num_envs`` key the creator returns the single ``gymnasium.Env`` (RLlib's "sync" and "async"
modes use that one)::

    register_rllib_envs()
    config = (
        PPOConfig()
        .environment("rlsuite/SOR-ShiftedLaplacian-v0", env_config={"sequence_length": 8})
        .env_runners(num_envs_per_env_runner=64, gym_env_vectorize_mode="vector_entry_point")
    )

**Masks and MultiBinary actions.** A masked env (``has_action_mask``: the mallocGame and
qcode families) is seen by RLlib with the mask inside its observation
(:func:`masked_observation_space`), and ``rllib.PPO`` acts with :class:`MaskedPPOTorchModule`,
which gives illegal actions probability 0; ``MultiBinary`` actions (coRMAB) get independent
Bernoullis (:class:`MultiBinaryPPOCatalog`). :func:`ppo_module_spec` picks the module.

**Agents.** :class:`RLlibPPO` (``rllib.PPO``) and :class:`RLlibDQN` (``rllib.DQN``, unmasked
Discrete actions only) wrap RLlib's PPO and DQN in rlsuite's :class:`~rlsuite.agents.base.Agent`
protocol; their shared part is :class:`RLlibAgent`. RLlib's runners build their own copies of the
agent's env from its id and kwargs (``env.spec``), seeded from the agent's seed, so the env
passed to the agent supplies the id, the spaces and the observations for ``predict``; its own
state is not advanced by ``learn``. Checkpoints hold the RLModule's torch weights (the full
learner module: PPO's value function, DQN's target network) and the config, loadable without
unpickling; as with the SB3 agents, optimizer moments (and DQN's replay buffer) are not saved,
so a resumed run is not bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorWrapper
from gymnasium.vector.utils import batch_space

try:
    import ray
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.distribution.torch.torch_distribution import (
        TorchDeterministic,
        TorchDistribution,
    )
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env
except ModuleNotFoundError as err:  # pragma: no cover - exercised without the extra
    raise ModuleNotFoundError(
        "the rllib.* agents and RLlib env registration need Ray RLlib: pip install 'rlsuite[ray]'",
        name=err.name,
    ) from err

from rlsuite.agents.base import Agent, Callback
from rlsuite.registry import ENVS
from rlsuite.vector import BatchedVectorEnv

VECTOR_ENTRY_POINT = "vector_entry_point"
# keys gymnasium.make_vec adds to a vector env's spec.kwargs that are not env kwargs
_MAKE_VEC_KEYS = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers", "device")
MODULE_PREFIX = "module."
#: the keys of a masked env's observation as RLlib sees it (:func:`masked_observation_space`)
OBS_KEY, MASK_KEY = "observations", "action_mask"


def _to_numpy(value: Any) -> Any:
    """Torch tensors (also inside dicts) as numpy arrays; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def decimal_bounds(space: gym.spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    """A Box's bounds as float64, each read back as the shortest decimal of its stored value.

    A ``float32`` Box built from ``high=1.99`` stores 1.99000001; RLlib's unsquashed actions
    reach that value exactly, and an env that checks its range in float64 against 1.99 rejects
    it. Clipping to these bounds moves such actions by at most one float32 ulp.
    """

    def read_back(bound: np.ndarray) -> np.ndarray:
        return np.array([float(str(v)) for v in bound.ravel()]).reshape(bound.shape)

    return read_back(space.low), read_back(space.high)


def masked_observation_space(
    observation_space: gym.Space, action_space: gym.Space
) -> gym.spaces.Dict:
    """How RLlib sees a masked env's observation: ``{"observations": the env's observation,
    "action_mask": Box(0, 1, (n,), float32)}`` (1 = legal), the layout
    :class:`MaskedPPOTorchModule` reads. Masks exist for ``Discrete(n)`` actions only."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"RLlib action masking here supports Discrete actions, got {action_space}")
    mask = gym.spaces.Box(0.0, 1.0, (int(action_space.n),), np.float32)
    return gym.spaces.Dict({OBS_KEY: observation_space, MASK_KEY: mask})


def _has_action_mask(env: gym.Env | gym.vector.VectorEnv) -> bool:
    base = env.unwrapped
    return bool(getattr(getattr(base, "core", base), "has_action_mask", False))


class MaskInObservation(gym.Wrapper):
    """A single masked rlsuite env with ``info["action_mask"]`` also in the observation
    (:func:`masked_observation_space`): what RLlib's own ``sync`` vectorisation needs."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = masked_observation_space(env.observation_space, env.action_space)

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._with_mask(obs, info), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with_mask(obs, info), reward, terminated, truncated, info

    @staticmethod
    def _with_mask(obs: np.ndarray, info: dict[str, Any]) -> dict[str, np.ndarray]:
        return {OBS_KEY: obs, MASK_KEY: np.asarray(info[MASK_KEY], dtype=np.float32)}


class NumpyVectorEnv(VectorWrapper):
    """A native rlsuite batched env seen with numpy in and out (what RLlib's runners expect).

    Observations are cast to ``single_observation_space.dtype``; rewards, flags and every info
    entry (``info["action_mask"]`` included) are numpy arrays with the batch dimension first.
    Actions may be numpy arrays or tensors. Episode ends follow the native env: next-step
    autoreset. ``unwrapped`` is the native env. For a masked env (``has_action_mask``) the
    observation is the dict of :func:`masked_observation_space`, whose mask row ``i`` is the
    legal actions of the observation in row ``i``.

    Seeding: an int ``seed`` gives environment ``i`` the seed ``seed * num_envs + i``, not
    gymnasium's ``seed + i``: RLlib seeds runner ``w`` with ``config.seed + w``, and this keeps
    the envs of different runners on disjoint episode sequences. A list of seeds is passed on.
    """

    def __init__(self, env: BatchedVectorEnv) -> None:
        if not isinstance(env, BatchedVectorEnv):
            raise ValueError(
                f"NumpyVectorEnv wraps a native rlsuite batched env, got {type(env).__name__}"
            )
        super().__init__(env)
        self._obs_dtype = env.single_observation_space.dtype
        self.masked = bool(env.has_action_mask)
        if self.masked:
            self.single_observation_space = masked_observation_space(
                env.single_observation_space, env.single_action_space
            )
            self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seed = int(seed) * self.num_envs
        obs, info = self.env.reset(seed=seed, options=options)
        info = _to_numpy(info)
        return self._obs(obs, info), info

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        info = _to_numpy(info)
        return (
            self._obs(obs, info),
            _to_numpy(reward),
            _to_numpy(terminated),
            _to_numpy(truncated),
            info,
        )

    def _obs(self, obs: torch.Tensor, info: dict[str, Any]) -> Any:
        obs = _to_numpy(obs).astype(self._obs_dtype, copy=False)
        if not self.masked:
            return obs
        return {OBS_KEY: obs, MASK_KEY: info[MASK_KEY].astype(np.float32)}


def make_rllib_env(env_id: str, env_config: Mapping[str, Any]) -> gym.Env | gym.vector.VectorEnv:
    """The creator :func:`register_rllib_envs` registers for ``env_id``.

    ``env_config`` holds the env's kwargs; with ``num_envs`` (RLlib's
    ``vector_entry_point`` mode adds it) the result is the native batched env behind
    :class:`NumpyVectorEnv` (``device`` in ``env_config`` places it), without it the single
    ``gymnasium.Env``.
    """
    if env_id not in ENVS:
        raise ValueError(
            f"unknown rlsuite environment {env_id!r}; known: {', '.join(sorted(ENVS))}"
        )
    kwargs = dict(env_config)
    num_envs = kwargs.pop("num_envs", None)
    if num_envs is None:
        kwargs.pop("device", None)
        env = gym.make(env_id, **kwargs)
        return MaskInObservation(env) if _has_action_mask(env) else env
    native = gym.make_vec(
        env_id, num_envs=int(num_envs), vectorization_mode=VECTOR_ENTRY_POINT, **kwargs
    )
    return NumpyVectorEnv(native)


def register_rllib_envs() -> list[str]:
    """Register every rlsuite env id with Tune's env registry, under its own name (idempotent).

    RLlib then builds an id given to ``config.environment(id, env_config=kwargs)``; with
    ``config.env_runners(gym_env_vectorize_mode="vector_entry_point")`` each runner gets one
    native batched env of ``num_envs_per_env_runner`` envs (see the module docstring).
    Returns the registered ids.
    """
    for env_id in ENVS:
        register_env(env_id, functools.partial(make_rllib_env, env_id))
    return list(ENVS)


class MaskedPPOTorchModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO module with the illegal actions removed from its distribution.

    The observation is the dict of :func:`masked_observation_space`; the networks see only
    ``"observations"``, and the logits of actions whose mask entry is 0 are replaced by the
    dtype's lowest value, so after the softmax they have probability exactly 0. This holds when
    sampling, in inference and in the loss, so the probability ratio and the entropy PPO
    optimises are those of the masked distribution ("invalid action masking": Huang & Ontañón,
    "A Closer Look at Invalid Action Masking in Policy Gradient Algorithms", FLAIRS 2022; the
    same rule as sb3-contrib's MaskablePPO).
    """

    def __init__(self, *args: Any, observation_space: gym.Space | None = None, **kwargs: Any):
        if not (
            isinstance(observation_space, gym.spaces.Dict)
            and set(observation_space.spaces) == {OBS_KEY, MASK_KEY}
        ):
            raise ValueError(
                f"MaskedPPOTorchModule needs a Dict observation space with keys {OBS_KEY!r} and "
                f"{MASK_KEY!r} (see masked_observation_space), got {observation_space}"
            )
        super().__init__(*args, observation_space=observation_space[OBS_KEY], **kwargs)
        self.observation_space = observation_space  # what the env (and the connectors) give

    @staticmethod
    def _split(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """(mask, the batch with only the env's observations), without changing ``batch``."""
        obs = batch[Columns.OBS]
        if not isinstance(obs, Mapping) or MASK_KEY not in obs:
            raise ValueError(
                f"MaskedPPOTorchModule got observations without {MASK_KEY!r}: the env must give "
                "the dict of masked_observation_space (NumpyVectorEnv does for masked envs)"
            )
        return obs[MASK_KEY], {**batch, Columns.OBS: obs[OBS_KEY]}

    @staticmethod
    def _masked(out: dict[str, Any], mask: torch.Tensor) -> dict[str, Any]:
        logits = out[Columns.ACTION_DIST_INPUTS]
        lowest = torch.finfo(logits.dtype).min
        out[Columns.ACTION_DIST_INPUTS] = logits.masked_fill(mask < 0.5, lowest)
        return out

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, batch = self._split(batch)
        return self._masked(super()._forward(batch, **kwargs), mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, batch = self._split(batch)
        return self._masked(super()._forward_train(batch, **kwargs), mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            _, batch = self._split(batch)
        return super().compute_values(batch, embeddings)


class TorchMultiBernoulli(TorchDistribution):
    """Independent Bernoulli actions for a ``MultiBinary(n)`` space (one logit per entry), which
    RLlib's catalog has no distribution for. ``logp`` and ``entropy`` sum over the entries;
    samples are int8 0/1 (the space's dtype); the deterministic action is ``logit > 0`` (each
    entry's mode)."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits
        super().__init__(logits=logits)

    def _get_torch_distribution(self, logits: torch.Tensor) -> torch.distributions.Distribution:
        base = torch.distributions.Bernoulli(logits=logits, validate_args=False)
        return torch.distributions.Independent(base, 1)

    @staticmethod
    def required_input_dim(space: gym.Space, **kwargs: Any) -> int:
        return int(np.prod(space.shape))

    def sample(self, *, sample_shape: Any = None) -> torch.Tensor:
        return super().sample(sample_shape=sample_shape).to(torch.int8)

    def rsample(self, *, sample_shape: Any = None) -> torch.Tensor:
        raise NotImplementedError("Bernoulli actions have no reparameterised sample")

    def logp(self, value: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self._dist.log_prob(value.to(self.logits.dtype))

    def to_deterministic(self) -> TorchDeterministic:
        return TorchDeterministic(loc=(self.logits > 0).to(torch.int8))


class MultiBinaryPPOCatalog(PPOCatalog):
    """RLlib's PPO catalog, with :class:`TorchMultiBernoulli` for ``MultiBinary`` actions."""

    @classmethod
    def _get_dist_cls_from_action_space(
        cls, action_space: gym.Space, *, framework: str | None = None
    ) -> Any:
        if isinstance(action_space, gym.spaces.MultiBinary):
            if framework not in (None, "torch"):
                raise ValueError(f"MultiBinary actions need framework='torch', got {framework!r}")
            return TorchMultiBernoulli
        return super()._get_dist_cls_from_action_space(action_space, framework=framework)


def ppo_module_spec(action_space: gym.Space, masked: bool) -> RLModuleSpec | None:
    """The RLModule ``rllib.PPO`` uses where RLlib's default does not fit:
    :class:`MaskedPPOTorchModule` for masked envs, :class:`MultiBinaryPPOCatalog` for
    ``MultiBinary`` actions, ``None`` (RLlib's default) otherwise."""
    if masked:
        return RLModuleSpec(module_class=MaskedPPOTorchModule)
    if isinstance(action_space, gym.spaces.MultiBinary):
        return RLModuleSpec(catalog_class=MultiBinaryPPOCatalog)
    return None


@dataclass
class RLlibPPOConfig:
    num_env_runners: int = 0  # remote EnvRunner actors; 0 samples in this process
    num_envs_per_env_runner: int | None = None  # envs in each runner's batch; None: the env's
    num_gpus_per_learner: float = 0.0  # GPUs for the (local) learner
    train_batch_size: int = 4000  # env steps per algo.train() iteration (per learner)
    lr: float = 3e-4  # Adam learning rate
    kwargs: dict[str, Any] = field(
        default_factory=dict
    )  # further PPOConfig.training(...) arguments (minibatch_size, num_epochs, gamma, ...)


@dataclass
class RLlibDQNConfig:
    num_env_runners: int = 0  # remote EnvRunner actors; 0 samples in this process
    num_envs_per_env_runner: int | None = None  # envs in each runner's batch; None: the env's
    num_gpus_per_learner: float = 0.0  # GPUs for the (local) learner
    train_batch_size: int = 32  # transitions per replay sample and update (per learner)
    lr: float = 5e-4  # Adam learning rate (RLlib's DQN default)
    kwargs: dict[str, Any] = field(
        default_factory=dict
    )  # further DQNConfig.training(...) arguments (replay_buffer_config={"capacity": ...},
    # num_steps_sampled_before_learning_starts, target_network_update_freq, epsilon, ...)


class RLlibAgent(Agent):
    """An RLlib new-API-stack algorithm as an rlsuite agent (the shared part of ``rllib.*``).

    Subclasses set ``name``, ``Config`` (with the fields of :class:`RLlibPPOConfig`),
    ``algorithm_config`` (the RLlib ``AlgorithmConfig`` class), ``metric_keys`` (the learner
    results :meth:`learn`'s callback receives) and, where needed, override :meth:`_check_env`
    and :meth:`_actions`.
    """

    algorithm_config: ClassVar[type[AlgorithmConfig]]
    metric_keys: ClassVar[tuple[str, ...]] = ()
    uses_ray: ClassVar[bool] = True  # rlsuite train --address connects Ray before __init__

    def __init__(self, env: BatchedVectorEnv, config: Any = None, *, seed: int = 0) -> None:
        super().__init__(env, config, seed=seed)
        spec = getattr(env, "spec", None)
        if spec is None or spec.id not in ENVS:
            raise ValueError(
                f"{self.name} needs an env made by gymnasium.make_vec(id, "
                "vectorization_mode='vector_entry_point') for a registered rlsuite id, so that "
                f"RLlib's runners can build their own copies; got {type(env).__name__} without one"
            )
        self._check_env(env)
        cfg = self.config
        if cfg.num_env_runners < 0:
            raise ValueError(f"num_env_runners must be >= 0, got {cfg.num_env_runners}")
        num_envs = cfg.num_envs_per_env_runner or env.num_envs
        env_config = {k: v for k, v in spec.kwargs.items() if k not in _MAKE_VEC_KEYS}
        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        register_rllib_envs()
        try:
            algo_config = (
                type(self)
                .algorithm_config()
                .environment(spec.id, env_config=env_config)
                .env_runners(
                    num_env_runners=cfg.num_env_runners,
                    num_envs_per_env_runner=num_envs,
                    gym_env_vectorize_mode=VECTOR_ENTRY_POINT,
                )
                .learners(num_gpus_per_learner=cfg.num_gpus_per_learner)
                .training(
                    train_batch_size_per_learner=cfg.train_batch_size,
                    lr=cfg.lr,
                    **cfg.kwargs,
                )
                .debugging(seed=self.seed)
            )
        except TypeError as err:
            raise ValueError(f"agent.params.kwargs for {self.name}: {err}") from err
        module_spec = self._module_spec(env)
        if module_spec is not None:
            algo_config = algo_config.rl_module(rl_module_spec=module_spec)
        try:
            self.algo = algo_config.build_algo()
        except ValueError as err:  # RLlib validates the config here
            raise ValueError(f"{self.name} config for {spec.id}: {err}") from err
        self._sampled_lifetime = 0

    def _check_env(self, env: BatchedVectorEnv) -> None:
        """Raise ``ValueError`` for an env this algorithm cannot act in (default: any is fine)."""

    def _module_spec(self, env: BatchedVectorEnv) -> RLModuleSpec | None:
        """The RLModule for ``env`` where RLlib's default does not fit (``None``: the default)."""
        return None

    # -- learning ------------------------------------------------------------------------------
    def learn(self, total_steps: int, callback: Callback | None = None) -> RLlibAgent:
        """Run ``algo.train()`` iterations until ``total_steps`` more env steps are sampled.

        The callback runs after every iteration (not every env step: RLlib samples a whole
        iteration's env steps at once) with the iteration's episode return and losses.
        """
        target = self.num_timesteps + int(total_steps)
        while self.num_timesteps < target:
            result = self.algo.train()
            runners = result.get("env_runners", {})
            lifetime = int(runners.get("num_env_steps_sampled_lifetime", 0))
            self.num_timesteps += max(lifetime - self._sampled_lifetime, 0)
            self._sampled_lifetime = lifetime
            if callback is not None and callback(self, _metrics(result, self.metric_keys)) is False:
                break
        return self

    # -- acting --------------------------------------------------------------------------------
    def _module(self) -> Any:
        return self.algo.get_module(DEFAULT_MODULE_ID)

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Actions of the RLModule (``forward_inference``) for a batch of observations."""
        as_tensor = isinstance(obs, torch.Tensor)
        module = self._module()
        device = next(module.parameters()).device
        space = self.env.single_observation_space
        batch: Any = torch.as_tensor(np.asarray(_to_numpy(obs), dtype=space.dtype), device=device)
        if self.env.has_action_mask:  # the legal actions of the agent's env now
            mask = torch.as_tensor(_to_numpy(self.env.action_masks()), device=device)
            batch = {OBS_KEY: batch, MASK_KEY: mask.float()}
        with torch.no_grad():
            actions = self._actions(module, {Columns.OBS: batch}, deterministic).cpu().numpy()
        actions = self._to_env_actions(actions)
        if as_tensor:
            return torch.as_tensor(actions, device=obs.device)
        return actions

    def _actions(
        self, module: Any, batch: dict[str, torch.Tensor], deterministic: bool
    ) -> torch.Tensor:
        """The module's actions for ``batch``: its inference action distribution, made
        deterministic (the mode) or sampled."""
        out = module.forward_inference(batch)
        dist = module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"])
        if deterministic:
            dist = dist.to_deterministic()
        return dist.sample()

    def _to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        """As RLlib's module-to-env step: ``Box`` actions unsquashed from [-1, 1] (RLlib's
        ``normalize_actions``, on by default), then clipped to :func:`decimal_bounds` (float64)."""
        space = self.env.single_action_space
        if not isinstance(space, gym.spaces.Box):
            return actions
        actions = actions.astype(np.float64)
        low, high = decimal_bounds(space)
        if self.algo.config.normalize_actions:
            with np.errstate(invalid="ignore"):  # unbounded dimensions stay as they are
                unsquashed = low + (np.clip(actions, -1.0, 1.0) + 1.0) * (high - low) / 2.0
            actions = np.where(np.isfinite(low) & np.isfinite(high), unsquashed, actions)
        return np.clip(actions, low, high)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The learner module's weights (every network, e.g. value function or target network)
        under ``module.``; optimizer moments (and a replay buffer) are not included."""
        weights = self.algo.learner_group.get_weights(module_ids=[DEFAULT_MODULE_ID])
        return {
            MODULE_PREFIX + k: torch.as_tensor(np.asarray(v)).clone()
            for k, v in weights[DEFAULT_MODULE_ID].items()
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Set the learner module's weights and sync them to the runners' inference modules."""
        current = self.state_dict()
        weights = {k: v for k, v in state.items() if k.startswith(MODULE_PREFIX)}
        if set(weights) != set(current):
            raise ValueError(
                f"checkpoint does not fit this {self.name} module: missing "
                f"{sorted(set(current) - set(weights))}, unexpected {sorted(set(weights) - set(current))}"
            )
        for key, value in weights.items():
            if tuple(value.shape) != tuple(current[key].shape):
                raise ValueError(
                    f"checkpoint weight {key!r} has shape {tuple(value.shape)}, this module's "
                    f"is {tuple(current[key].shape)}"
                )
        module_state = {
            k.removeprefix(MODULE_PREFIX): v.detach().cpu().numpy() for k, v in weights.items()
        }
        self.algo.learner_group.set_weights({DEFAULT_MODULE_ID: module_state})
        self.algo.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.algo.learner_group, inference_only=True
        )

    def close(self) -> None:
        """Stop the algorithm's runners and learners (Ray itself stays up)."""
        self.algo.stop()


class RLlibPPO(RLlibAgent):
    """Proximal Policy Optimization (Schulman et al. 2017), RLlib's new-API-stack implementation,
    sampling with the native batched env (see the module docstring)."""

    name = "rllib.PPO"
    Config: ClassVar[type] = RLlibPPOConfig
    algorithm_config = PPOConfig
    metric_keys = ("total_loss", "policy_loss", "vf_loss", "entropy")

    def _module_spec(self, env: BatchedVectorEnv) -> RLModuleSpec | None:
        return ppo_module_spec(env.single_action_space, bool(env.has_action_mask))


class RLlibDQN(RLlibAgent):
    """Deep Q-Network (Mnih et al. 2015), RLlib's new-API-stack implementation (double Q and a
    dueling head by default, prioritized episode replay), sampling with the native batched env;
    ``Discrete`` action spaces only.

    An ``algo.train()`` iteration samples at least RLlib's ``min_sample_timesteps_per_iteration``
    (1000 for DQN) env steps, so :meth:`learn` advances in steps of that size. ``predict`` is
    greedy in the Q-values (``forward_inference``); ``deterministic=False`` acts
    epsilon-greedily with the exploration schedule's epsilon at ``num_timesteps``. The replay
    buffer is not checkpointed.
    """

    name = "rllib.DQN"
    Config: ClassVar[type] = RLlibDQNConfig
    algorithm_config = DQNConfig
    metric_keys = ("qf_loss", "qf_mean", "td_error_mean")

    def _check_env(self, env: BatchedVectorEnv) -> None:
        space, env_name = env.single_action_space, env.spec.id if env.spec else type(env).__name__
        if not isinstance(space, gym.spaces.Discrete):
            raise ValueError(
                f"{self.name} needs a Discrete action space, got {space} ({env_name}); "
                "use rllib.PPO for Box actions"
            )
        if env.has_action_mask:
            raise ValueError(
                f"{env_name} has action masks, which {self.name} cannot respect (its greedy "
                "argmax would pick illegal actions); use rllib.PPO, which masks them"
            )

    def _actions(
        self, module: Any, batch: dict[str, torch.Tensor], deterministic: bool
    ) -> torch.Tensor:
        if deterministic:
            return module.forward_inference(batch)["actions"]
        return module.forward_exploration(batch, t=self.num_timesteps)["actions"]


def _metrics(result: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float]:
    """The scalar metrics of one ``algo.train()`` result that rlsuite logs: the episode return
    and the default module's learner results named in ``keys``."""
    metrics: dict[str, float] = {}
    ret = result.get("env_runners", {}).get("episode_return_mean")
    if ret is not None and math.isfinite(float(ret)):
        metrics["episode_return_mean"] = float(ret)
    learner = result.get("learners", {}).get(DEFAULT_MODULE_ID, {})
    for key in keys:
        if key in learner:
            metrics[key] = float(learner[key])
    return metrics
