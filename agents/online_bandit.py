"""The online loop shared by the bandit agents (:mod:`.tsallis_inf`, :mod:`.chebcb`).

An :class:`OnlineBandit` plays one round per env step on a batch of one env over a
:class:`gymnasium.spaces.Discrete` action space (a grid of ω): it computes a distribution over
the ``K`` arms from the current observation, draws an arm with its own generator, steps the
env, and feeds the arm's cost (``−reward``, SOR's iterations) back to the algorithm. A subclass
implements the algorithm through a few hooks:

* :meth:`~OnlineBandit.distribution` — this round's ``(K,)`` distribution for the current
  observation, and what :meth:`~OnlineBandit.observe` needs of the round;
* :meth:`~OnlineBandit.observe` — the update with the played arm's cost, returning the
  algorithm's own metrics;
* :meth:`~OnlineBandit.greedy_actions` and :meth:`~OnlineBandit.distributions` — ``predict``
  for a batch of observations;
* :meth:`~OnlineBandit.learned_state`, :meth:`~OnlineBandit.load_learned_state` and
  :meth:`~OnlineBandit.state_shape_hint` — its part of the state dict.

Distributions are float64, as a numpy array or a torch tensor (the agent's choice); sampling
and the entropy follow that type.

:func:`check_positive_float` and :func:`check_context_range` are the checks their ``Config``
dataclasses share.

**Autoreset.** The env uses next-step autoreset: the step after a truncation only resets the
sequence (reward 0). ``learn`` remembers the previous step's flags, plays arm 0 on that step
(the env ignores it) and makes no update on it.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.agents.base import Agent, Callback

from rlsuite.vector import BatchedVectorEnv

Probs = np.ndarray | torch.Tensor
"""A float64 distribution over the ``K`` arms, shape ``(K,)``."""

OnlineBanditT = TypeVar("OnlineBanditT", bound="OnlineBandit")


def check_positive_float(name: str, value: Any) -> None:
    """Config check: ``value`` is a positive finite int or float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {value!r} ({type(value).__name__})")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite float, got {value!r}")


def check_context_range(pair: Any) -> None:
    """Config check: ``context_range`` is a pair ``(low, high)`` of finite floats, low < high."""
    if not (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
    ):
        raise TypeError(f"context_range must be a pair (low, high) of floats, got {pair!r}")
    low, high = pair
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"context_range must be two finite floats (low, high) with low < high, got {pair!r}"
        )


def entropy(probs: Probs) -> float:
    """The entropy (nats) of a distribution over arms."""
    nonzero = probs[probs > 0]
    if isinstance(nonzero, torch.Tensor):
        return float(-(nonzero * nonzero.log()).sum())
    return float(-(nonzero * np.log(nonzero)).sum())


class OnlineBandit(Agent):
    """A bandit over the env's discrete arms that learns online from a batch of one env."""

    @classmethod
    def check_env(cls, env: BatchedVectorEnv) -> None:
        """One sequence (``num_envs=1``) of a Discrete action space without masks: the
        bandit plays every arm, so an env with illegal actions (``action_mask``) is refused."""
        space = env.single_action_space
        if not isinstance(space, spaces.Discrete):
            raise TypeError(
                f"{cls.__name__} needs a Discrete action space (a grid of ω), got {space}; "
                "use an env id without a continuous action type"
            )
        if getattr(env, "has_action_mask", False):
            raise ValueError(
                f"{cls.__name__} plays every arm, but {type(env).__name__} has illegal actions "
                "(info['action_mask']); use an agent that respects masks (e.g. sb3.MaskablePPO "
                "or a family heuristic)"
            )
        if env.num_envs != 1:
            raise ValueError(
                f"{cls.__name__} learns from one sequence: it needs env.num_envs: 1, got "
                f"{env.num_envs} (evaluation may use any batch)"
            )

    def __init__(self, env: BatchedVectorEnv, config: Any = None, *, seed: int = 0) -> None:
        super().__init__(env, config, seed=seed)
        space = env.single_action_space
        if not isinstance(space, spaces.Discrete):
            raise TypeError(
                f"{type(self).__name__} needs a Discrete action space (a grid of ω), "
                f"got {space}; use an env id without a continuous action type"
            )
        self.num_arms = int(space.n)
        obs_dim = int(np.prod(env.single_observation_space.shape))
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed)
        # Where learn() is in the env's stream (so that a resumed run continues exactly).
        self._started = False  # env.reset(seed=self.seed) done
        self._needs_reset = False  # the previous step ended a sequence: next one is a reset step
        self._obs = torch.zeros(1, obs_dim, dtype=torch.float32)  # the current observation

    # -- the hooks of the algorithm -------------------------------------------------------------
    @abstractmethod
    def distribution(self, obs: torch.Tensor) -> tuple[Probs, Any]:
        """This round's distribution ``(K,)`` for the observation ``obs`` (shape
        ``(1, obs_dim)``, on the CPU), and whatever :meth:`observe` needs of the round."""

    @abstractmethod
    def observe(self, played: Any, arm: int, cost: float, probs: Probs) -> dict[str, float]:
        """Update with the round: ``arm`` was drawn from ``probs`` and cost ``cost`` (``−reward``;
        ``played`` is what :meth:`distribution` returned with ``probs``). Returns the round's
        metrics besides ``reward``, ``entropy``, ``iterations`` and ``omega``."""

    @abstractmethod
    def greedy_actions(self, batch: torch.Tensor) -> np.ndarray:
        """The deterministic arms ``(N,)`` for a CPU batch ``(N, obs_dim)`` of observations."""

    @abstractmethod
    def distributions(self, batch: torch.Tensor) -> Iterable[Probs]:
        """The distribution ``(K,)`` of each observation of a CPU batch ``(N, obs_dim)``."""

    @abstractmethod
    def learned_state(self) -> dict[str, torch.Tensor]:
        """The algorithm's learned values as tensors (the generator and the position in the
        env's stream are added by :meth:`state_dict`)."""

    @abstractmethod
    def load_learned_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Inverse of :meth:`learned_state` (``state`` is already checked)."""

    @abstractmethod
    def state_shape_hint(self) -> str:
        """Why a saved tensor's shape may differ from this agent's (for the error message)."""

    # -- sampling -------------------------------------------------------------------------------
    def _sample(self, probs: Probs) -> int:
        """An arm drawn from ``probs`` with one uniform of the agent's generator."""
        u = float(torch.rand((), generator=self.generator, dtype=torch.float64))
        if isinstance(probs, torch.Tensor):
            cdf = torch.cumsum(probs, dim=0)
            index = int(torch.searchsorted(cdf, torch.tensor([u], dtype=cdf.dtype), right=True))
        else:
            index = int(np.searchsorted(np.cumsum(probs), u, side="right"))
        return min(index, len(probs) - 1)

    # -- the Agent protocol -------------------------------------------------------------------
    def learn(
        self: OnlineBanditT, total_steps: int, callback: Callback | None = None
    ) -> OnlineBanditT:
        """Play ``total_steps`` rounds on ``self.env`` (a batch of one), updating after each.

        The first call resets the env with ``seed=self.seed``; later calls (and calls after
        :meth:`load_state_dict`) continue the env where it is. ``callback(self, metrics)``
        runs after every step with ``reward``, the ``entropy`` of the distribution played,
        ``iterations`` (the cost), ``omega`` and the metrics of :meth:`observe` (a reset step
        reports ``reward`` 0 and ``entropy`` only); returning ``False`` stops learning.
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 0:
            raise ValueError(f"total_steps must be a non-negative int, got {total_steps!r}")
        env = self.env
        if env.num_envs != 1:
            raise ValueError(
                f"{type(self).__name__}.learn plays one sequence: it needs an env with "
                f"num_envs=1, got num_envs={env.num_envs} (predict() accepts any batch)"
            )
        if not self._started:
            obs, _ = env.reset(seed=self.seed)
            self._obs = obs.detach().cpu().to(torch.float32)
            self._started = True
            self._needs_reset = False
        omega_grid = getattr(env, "omega_grid", None)
        for _ in range(total_steps):
            probs, played = self.distribution(self._obs)
            reset_step = self._needs_reset
            arm = 0 if reset_step else self._sample(probs)  # the env ignores a reset step's action
            obs, reward, terminated, truncated, _ = env.step(
                torch.tensor([arm], dtype=torch.int64, device=env.device)
            )
            metrics: dict[str, float] = {"reward": float(reward[0]), "entropy": entropy(probs)}
            if not reset_step:
                cost = -float(reward[0])  # SOR: reward = −iterations
                extra = self.observe(played, arm, cost, probs)
                omega = float(omega_grid[arm]) if omega_grid is not None else float(arm)
                metrics.update(iterations=cost, omega=omega, **extra)
            self._needs_reset = bool(terminated[0]) or bool(truncated[0])
            self._obs = obs.detach().cpu().to(torch.float32)
            self.num_timesteps += 1
            if callback is not None and callback(self, metrics) is False:
                break
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> torch.Tensor | np.ndarray:
        """Arms for a batch ``(N, obs_dim)`` of observations: :meth:`greedy_actions` if
        ``deterministic``, else a draw from each observation's distribution (with the agent's
        generator). Returns ``(N,)`` int64, a tensor on ``obs``'s device for tensor input and
        a numpy array otherwise."""
        batch = obs if isinstance(obs, torch.Tensor) else torch.as_tensor(np.asarray(obs))
        if batch.ndim != 2:
            raise ValueError(
                f"obs must be a batch of shape (N, obs_dim), got shape {tuple(batch.shape)}; "
                "wrap a single observation as obs[None]"
            )
        batch = batch.detach().cpu()
        if deterministic:
            actions = np.asarray(self.greedy_actions(batch), dtype=np.int64)
        else:
            actions = np.array([self._sample(p) for p in self.distributions(batch)], np.int64)
        if isinstance(obs, torch.Tensor):
            return torch.as_tensor(actions, device=obs.device)
        return actions

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            **self.learned_state(),
            "rng_state": self.generator.get_state(),
            "started": torch.tensor(self._started),
            "needs_reset": torch.tensor(self._needs_reset),
            "obs": self._obs.clone(),
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        expected = self.state_dict()
        if set(state) != set(expected):
            raise ValueError(
                f"{type(self).__name__} state has keys {sorted(state)}, expected {sorted(expected)}"
            )
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"state[{key!r}] must be a tensor, got {type(value).__name__}")
            if tuple(value.shape) != tuple(expected[key].shape):
                raise ValueError(
                    f"state[{key!r}] has shape {tuple(value.shape)}, expected "
                    f"{tuple(expected[key].shape)} {self.state_shape_hint()}"
                )
            if value.dtype != expected[key].dtype:
                raise ValueError(
                    f"state[{key!r}] has dtype {value.dtype}, expected {expected[key].dtype}"
                )
        self.load_learned_state(state)
        self.generator.set_state(state["rng_state"].cpu().clone())
        self._started = bool(state["started"])
        self._needs_reset = bool(state["needs_reset"])
        self._obs = state["obs"].cpu().clone()
