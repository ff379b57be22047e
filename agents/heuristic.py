"""A domain's classical heuristic as an rlsuite agent: it plays, it does not learn.

Each coRMAB baseline (:mod:`rlsuite.envs.rmab.baselines`) and mallocGame baseline
(:mod:`rlsuite.envs.malloc.baselines`) is an agent name, so a config can select it like any
learner and ``rlsuite eval`` reports it next to the other baselines::

    agent:
      name: rmab.greedy        # rmab.do-nothing | rmab.random | rmab.sampling | rmab.greedy
                               # | rmab.greedy:scip | rmab.iterative | rmab.whittle
                               # | malloc.best-fit | malloc.first-fit | malloc.random
                               # | malloc.slow

``learn(total_steps)`` plays the heuristic on the env for that many env steps and reports the
mean reward per step, so a training run of a heuristic logs the same metrics as a learner's.
Its state is the heuristic's random generator (for ``random`` and ``sampling``) and the current
observation, saved so a resumed run continues with the same actions.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from rlsuite.agents.base import Agent, Callback

from rlsuite.vector import BatchedVectorEnv

HeuristicT = TypeVar("HeuristicT", bound="HeuristicAgent")


@dataclass
class HeuristicConfig:
    """A heuristic has no hyperparameters of its own (its seed is the run's ``train.seed``)."""


def _generator_state(rng: np.random.Generator) -> torch.Tensor:
    """A numpy PCG64 generator's state as an int64 tensor (no pickles in checkpoints)."""
    state = rng.bit_generator.state
    words = [state["state"]["state"], state["state"]["inc"]]
    raw = b"".join(int(w).to_bytes(16, "little") for w in words)
    extra = [state["has_uint32"], state["uinteger"]]
    return torch.as_tensor(np.concatenate([np.frombuffer(raw, dtype=np.int64), extra]))


def _set_generator_state(rng: np.random.Generator, tensor: torch.Tensor) -> None:
    values = tensor.cpu().numpy().astype(np.int64)
    if values.shape != (6,):
        raise ValueError(f"agent/rng_state must have shape (6,), got {values.shape}")
    raw = values[:4].tobytes()
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {
            "state": int.from_bytes(raw[:16], "little"),
            "inc": int.from_bytes(raw[16:], "little"),
        },
        "has_uint32": int(values[4]),
        "uinteger": int(values[5]),
    }


class HeuristicAgent(Agent):
    """A family's baseline policy (``baseline``, a name in ``rlsuite.envs.<family>.baselines``,
    whose ``Baseline(name, env, seed)`` has a numpy generator ``rng``) behind the agent
    protocol; it plays envs of type ``env_type`` ("module:Class", described by ``plays``)."""

    baseline: ClassVar[str]
    family: ClassVar[str]
    env_type: ClassVar[str]
    plays: ClassVar[str]
    Config = HeuristicConfig

    def __init__(self, env: BatchedVectorEnv, config: Any = None, *, seed: int = 0) -> None:
        super().__init__(env, config, seed=seed)
        module, _, cls = self.env_type.partition(":")
        if not isinstance(env, getattr(importlib.import_module(module), cls)):
            raise TypeError(f"{self.name} plays {self.plays}, not {type(env).__name__}")
        baselines = importlib.import_module(f"rlsuite.envs.{self.family}.baselines")
        self.policy = baselines.Baseline(self.baseline, env, seed=self.seed)
        self._obs: torch.Tensor | None = None

    def learn(self: HeuristicT, total_steps: int, callback: Callback | None = None) -> HeuristicT:
        if self._obs is None:
            self._obs, _ = self.env.reset(seed=self.seed)
        done = self.num_timesteps + total_steps
        while self.num_timesteps < done:
            obs, reward, _, _, info = self.env.step(self.predict(self._obs))
            self._obs = obs
            self.num_timesteps += self.env.num_envs
            # "_key" marks the envs that played this step (not those only reset on it)
            played = next(v for k, v in info.items() if k.startswith("_"))
            metrics = {}
            if bool(played.any()):
                metrics["reward"] = float(reward[played].mean())
            if callback is not None and callback(self, metrics) is False:
                break
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        return self.policy.predict(torch.as_tensor(obs), deterministic)

    def state_dict(self) -> dict[str, torch.Tensor]:
        started = self._obs is not None
        obs = self._obs if started else torch.zeros(self.env.observation_space.shape)
        return {
            "rng_state": _generator_state(self.policy.rng),
            "started": torch.tensor(started),
            "obs": obs.detach().cpu().clone(),
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        keys = {"rng_state", "started", "obs"}
        if set(state) != keys:
            raise ValueError(
                f"a {self.name} checkpoint holds agent/{sorted(keys)}, got {sorted(state)}"
            )
        _set_generator_state(self.policy.rng, state["rng_state"])
        # a run's observation continues it; an env of another batch size (evaluation) starts afresh
        same_batch = tuple(state["obs"].shape) == tuple(self.env.observation_space.shape)
        started = bool(state["started"]) and same_batch
        self._obs = state["obs"].to(self.env.device).float() if started else None


class CoRMABHeuristic(HeuristicAgent):
    family, plays = "rmab", "the coRMAB environments (rlsuite/CoRMAB-*)"
    env_type = "rlsuite.envs.rmab.vector:CoRMABVectorEnv"


class MallocHeuristic(HeuristicAgent):
    family, plays = "malloc", "the mallocGame environments (rlsuite/Malloc*)"
    env_type = "rlsuite.envs.malloc.vector:MallocVectorEnv"


class DoNothing(CoRMABHeuristic):
    name, baseline = "rmab.do-nothing", "do-nothing"


class RandomFeasible(CoRMABHeuristic):
    name, baseline = "rmab.random", "random"


class Sampling(CoRMABHeuristic):
    name, baseline = "rmab.sampling", "sampling"


class Greedy(CoRMABHeuristic):
    name, baseline = "rmab.greedy", "greedy"


class GreedySCIP(CoRMABHeuristic):
    name, baseline = "rmab.greedy:scip", "greedy:scip"


class IterativeGreedy(CoRMABHeuristic):
    name, baseline = "rmab.iterative", "iterative"


class Whittle(CoRMABHeuristic):
    name, baseline = "rmab.whittle", "whittle"


class MallocBestFit(MallocHeuristic):
    name, baseline = "malloc.best-fit", "best-fit"


class MallocFirstFit(MallocHeuristic):
    name, baseline = "malloc.first-fit", "first-fit"


class MallocRandom(MallocHeuristic):
    name, baseline = "malloc.random", "random"


class MallocSlow(MallocHeuristic):
    name, baseline = "malloc.slow", "slow"
