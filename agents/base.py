"""The protocol every rlsuite agent follows, modelled on Stable-Baselines3's verbs.

::

    agent = TsallisINF(env, {"learning_rate_scale": 1.0}, seed=0)
    agent.learn(total_steps=5000, callback=None)
    action = agent.predict(obs, deterministic=True)
    agent.save("agent.pt")
    agent = TsallisINF.load("agent.pt", env)

``env`` is a native batched environment (:class:`rlsuite.vector.BatchedVectorEnv`), so an
agent sees torch tensors on the env's device. Hyperparameters live in the agent's ``Config``
dataclass (documented defaults); a config file's ``agent.params`` fills it, and an unknown or
mistyped key is an error before any work starts. Checkpoints hold tensors plus JSON metadata
and load with ``torch.load(weights_only=True)`` (see :mod:`rlsuite.runs`); ``Agent.load(path, env,
config_overrides={"batch_size": 64})`` changes config fields for this use of the checkpoint
(``rlsuite eval --agent-param``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from rlsuite.config import ConfigError, build_dataclass, config_to_dict, validate_params
from rlsuite.runs import load_checkpoint, save_checkpoint
from rlsuite.vector import BatchedVectorEnv

Callback = Callable[["Agent", Mapping[str, float]], "bool | None"]
"""Called by ``learn`` after every batched env step with the agent (``agent.num_timesteps``
already counts that step) and the step's scalar metrics; returning ``False`` stops learning."""

AgentT = TypeVar("AgentT", bound="Agent")
AGENT_PREFIX = "agent/"


class Agent(ABC):
    """Base class: subclasses define ``name``, ``Config`` and the abstract methods.

    Two optional hooks:

    - **Episode metrics.** An agent that measures its own work per episode (search nodes
      generated, network calls, solve time, solver fallbacks) lists the names in
      ``episode_metrics`` and implements :meth:`pop_episode_metrics`. Evaluation
      (:func:`rlsuite.evaluation.run_agent_episodes`) calls it with the ids of the envs whose
      episodes just ended; ``rlsuite eval`` reports the quartiles of each metric beside the
      env's own ``episode_metrics``. The agent keeps one running value per env of the batch
      (row ``i`` of ``predict``'s observations is env ``i``).
    - **Ray.** ``uses_ray = True`` marks an agent that runs on Ray itself (``rllib.*``):
      ``rlsuite train --address ADDR`` (or ``RAY_ADDRESS``) connects this process to that
      cluster before the agent is built, so the agent's own ``ray.init`` is skipped
      (:func:`rlsuite.training.connect_ray`). ``--address`` with any other agent is an error.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    episode_metrics: ClassVar[tuple[str, ...]] = ()
    """Names of the per-episode values :meth:`pop_episode_metrics` returns (none by default)."""
    uses_ray: ClassVar[bool] = False
    """Whether the agent runs on Ray itself (see the class docstring)."""
    nonfinite_state_keys: ClassVar[tuple[str, ...]] = ()
    """Keys of :meth:`state_dict` that may hold NaN or infinities (e.g. a ``-inf`` "no best
    yet"); every other floating-point tensor must be finite, or :meth:`restore` refuses the
    checkpoint (NaN weights are a diverged run, never something to evaluate or resume)."""

    def __init__(self, env: BatchedVectorEnv, config: Any = None, *, seed: int = 0) -> None:
        if not isinstance(env, BatchedVectorEnv):
            raise TypeError(
                f"{type(self).__name__} needs a native rlsuite batched env "
                f"(gymnasium.make_vec(id, vectorization_mode='vector_entry_point')), got {type(env).__name__}"
            )
        if config is None:
            config = self.Config()
        elif isinstance(config, Mapping):
            config = validate_params(self.Config, config)
        elif not isinstance(config, self.Config):
            raise TypeError(
                f"config must be a {self.Config.__name__} or a mapping, got {type(config).__name__}"
            )
        self.env = env
        self.config = config
        self.seed = int(seed)
        self.num_timesteps = 0

    @classmethod
    def check_env(cls, env: BatchedVectorEnv) -> None:
        """Refuse an env this agent cannot *learn* on (a ``ValueError`` or ``TypeError``
        that says what the agent needs), e.g. a one-sequence bandit given ``num_envs: 2`` or
        an agent without masks on an env with ``info["action_mask"]``. Training calls it
        before the run directory exists (evaluation may use any batch size). The default
        accepts every env."""
        return None

    @abstractmethod
    def learn(self: AgentT, total_steps: int, callback: Callback | None = None) -> AgentT:
        """Interact with ``self.env`` for ``total_steps`` more env steps (summed over the batch)."""

    @abstractmethod
    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Actions for a batch of observations (the env's own tensors or numpy arrays)."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every learned value and RNG state as tensors, enough to resume exactly."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state_dict`; raise ``ValueError`` on missing or misshapen keys."""

    def pop_episode_metrics(self, env_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each of :attr:`episode_metrics` for the episodes of ``env_ids`` (int64, ``(k,)``) that
        just ended: ``{name: (k,) tensor}``, one value per id in that order; the agent then
        starts counting those envs' next episodes from zero. Evaluation also calls it once with
        every env id before the first episode, to drop what was counted before (e.g. during
        ``learn``). The default, for agents without episode metrics, returns ``{}``."""
        return {}

    # -- persistence shared by every agent -----------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """What a checkpoint needs besides tensors: the agent, its config, the env id and
        kwargs, the seed and ``training_seeds`` ``[A, B]`` (the env seeds ``A..B-1`` that
        :meth:`learn` plays: env ``i`` of the batch gets ``seed + i``), so ``rlsuite eval`` of
        the checkpoint file alone refuses to report on them."""
        from rlsuite import __version__

        spec = getattr(self.env, "spec", None)
        return {
            "agent": self.name,
            "config": config_to_dict(self.config),
            "env_id": spec.id if spec is not None else None,
            "env_kwargs": dict(spec.kwargs) if spec is not None else {},
            "seed": self.seed,
            "training_seeds": [self.seed, self.seed + int(self.env.num_envs)],
            "num_timesteps": self.num_timesteps,
            "rlsuite_version": __version__,
        }

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        """The agent's state under the ``agent/`` prefix (a training checkpoint adds ``env/``)."""
        tensors = {AGENT_PREFIX + k: v for k, v in self.state_dict().items()}
        tensors[AGENT_PREFIX + "num_timesteps"] = torch.tensor(self.num_timesteps)
        return tensors

    def restore(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Load the ``agent/`` part of a checkpoint's tensors (other keys are ignored)."""
        state = {
            k[len(AGENT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(AGENT_PREFIX)
        }
        if "num_timesteps" not in state:
            raise ValueError(
                "the checkpoint has no agent/num_timesteps: not an rlsuite agent checkpoint"
            )
        nonfinite = [
            k
            for k, v in state.items()
            if k not in self.nonfinite_state_keys
            and (v.is_floating_point() or v.is_complex())
            and not bool(torch.isfinite(v).all())
        ]
        if nonfinite:
            raise ValueError(
                f"the checkpoint's {self.name} state holds NaN or infinite values in "
                f"{', '.join(AGENT_PREFIX + k for k in sorted(nonfinite))} (a diverged run?); "
                "refusing to load it"
            )
        self.num_timesteps = int(state.pop("num_timesteps"))
        self.load_state_dict(state)

    def save(self, path: str | Path) -> Path:
        """Write weights, state and metadata to ``path`` (atomic)."""
        return save_checkpoint(path, self.checkpoint_tensors(), self.metadata())

    @classmethod
    def config_with_overrides(
        cls, config: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None
    ) -> Any:
        """The agent's ``Config`` from a checkpoint's ``config`` with ``overrides`` applied.

        ``overrides`` maps field names to new values; a mapping given for a mapping-valued field
        (SB3's ``kwargs``) is merged into it key by key, so ``{"kwargs": {"batch_size": 64}}``
        keeps the other ``kwargs``. The result is checked like ``agent.params``: an unknown key
        names the key and lists the allowed ones, a wrong type names the key, the value and the
        expected type, and a value the ``Config``'s own checks refuse is refused too: each a
        :class:`~rlsuite.config.ConfigError` whose message starts with ``"--agent-param "``."""
        saved = validate_params(cls.Config, config)  # the checkpoint's own config first
        if not overrides:
            return saved
        try:
            return build_dataclass(cls.Config, _merge(config_to_dict(saved), overrides))
        except (ConfigError, ValueError, TypeError) as err:  # also the Config's own checks
            raise ConfigError(f"--agent-param {err}") from None

    @classmethod
    def load(
        cls: type[AgentT],
        path: str | Path,
        env: BatchedVectorEnv,
        *,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> AgentT:
        """Rebuild an agent saved by :meth:`save` (or a training checkpoint), attached to ``env``.

        ``config_overrides`` replace fields of the saved config before the agent is built (see
        :meth:`config_with_overrides`), e.g. a larger search budget for evaluation."""
        tensors, meta = load_checkpoint(path)
        if meta.get("agent") != cls.name:
            raise ValueError(
                f"{path} holds a checkpoint of agent {meta.get('agent')!r}, not {cls.name!r}; "
                f"load it with rlsuite.registry.get_agent_class({meta.get('agent')!r})"
            )
        config = cls.config_with_overrides(meta.get("config"), config_overrides)
        agent = cls(env, config, seed=int(meta.get("seed", 0)))
        agent.restore(tensors)
        return agent


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; mappings in both are merged recursively."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
