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
and load with ``torch.load(weights_only=True)`` (see :mod:`rlsuite.runs`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from rlsuite.config import config_to_dict, validate_params
from rlsuite.runs import load_checkpoint, save_checkpoint
from rlsuite.vector import BatchedVectorEnv

Callback = Callable[["Agent", Mapping[str, float]], "bool | None"]
"""Called by ``learn`` after every batched env step with the agent (``agent.num_timesteps``
already counts that step) and the step's scalar metrics; returning ``False`` stops learning."""

AgentT = TypeVar("AgentT", bound="Agent")
AGENT_PREFIX = "agent/"


class Agent(ABC):
    """Base class: subclasses define ``name``, ``Config`` and the abstract methods."""

    name: ClassVar[str]
    Config: ClassVar[type]

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

    # -- persistence shared by every agent -----------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        from rlsuite import __version__

        spec = getattr(self.env, "spec", None)
        return {
            "agent": self.name,
            "config": config_to_dict(self.config),
            "env_id": spec.id if spec is not None else None,
            "env_kwargs": dict(spec.kwargs) if spec is not None else {},
            "seed": self.seed,
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
        self.num_timesteps = int(state.pop("num_timesteps"))
        self.load_state_dict(state)

    def save(self, path: str | Path) -> Path:
        """Write weights, state and metadata to ``path`` (atomic)."""
        return save_checkpoint(path, self.checkpoint_tensors(), self.metadata())

    @classmethod
    def load(cls: type[AgentT], path: str | Path, env: BatchedVectorEnv) -> AgentT:
        """Rebuild an agent saved by :meth:`save` (or a training checkpoint), attached to ``env``."""
        tensors, meta = load_checkpoint(path)
        if meta.get("agent") != cls.name:
            raise ValueError(
                f"{path} holds a checkpoint of agent {meta.get('agent')!r}, not {cls.name!r}; "
                f"load it with rlsuite.registry.get_agent_class({meta.get('agent')!r})"
            )
        agent = cls(env, meta.get("config") or {}, seed=int(meta.get("seed", 0)))
        agent.restore(tensors)
        return agent
