"""Base classes for natively batched torch environments.

Every rlsuite family implements its dynamics once, as a :class:`BatchedVectorEnv` subclass whose
state is a set of torch tensors with a leading batch dimension on any device. Two views are
built on that one core:

* the core itself is a ``gymnasium.vector.VectorEnv`` (``gymnasium.make_vec(id, num_envs=N,
  vectorization_mode="vector_entry_point", device="cuda")``): observations, rewards and flags
  are torch tensors on ``device``; next-step autoreset as declared in ``metadata``;
* :class:`BatchOfOneEnv` is the single ``gymnasium.Env``: a batch of one on the CPU whose
  outputs are converted to numpy and Python scalars, so it passes ``check_env``.

Action masks. A family whose legal actions depend on the state (a ``Discrete`` action space)
implements ``action_masks()`` — ``(B, A)`` bool, True where legal — and sets
``has_action_mask = True``; ``reset`` and ``step`` then return it as ``info["action_mask"]``
(numpy ``(A,)`` in the single env, which also has ``action_masks()``, the name sb3-contrib's
MaskablePPO looks for), and :class:`MaskedDiscrete` / :class:`MaskedMultiDiscrete` make
``action_space.sample()`` draw legal actions.

Seeding. ``reset(seed=s)`` gives environment ``i`` of the batch the seed ``s + i`` (gymnasium's
convention for vector envs); each later episode of that environment is numbered, and a
family draws its instance from the pair (seed, episode) with :mod:`rlsuite.keyed_random`, so an
environment's sequence of episodes does not depend on the batch it runs in.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

Info = dict[str, torch.Tensor]


def sample_legal(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random legal action per row of the boolean ``masks`` (``(B, A)``)."""
    return np.argmax(rng.random(masks.shape) + masks, axis=1)  # legal entries lie in [1, 2)


class MaskedDiscrete(gym.spaces.Discrete):
    """``Discrete(n)`` whose ``sample()`` (without a mask) draws a legal action of the env's
    current mask (``mask()``, a bool ``(n,)`` array); ``contains`` is ``Discrete``'s."""

    def __init__(self, n: int, mask: Callable[[], np.ndarray], seed: int | None = None) -> None:
        super().__init__(n, seed=seed)
        self._mask = mask

    def sample(self, mask: Any = None, probability: Any = None) -> np.int64:
        if mask is None and probability is None:
            mask = self._mask().astype(np.int8)
        return super().sample(mask=mask, probability=probability)


class MaskedMultiDiscrete(gym.spaces.MultiDiscrete):
    """A batch of ``Discrete(n)`` actions whose ``sample()`` draws a legal action uniformly for
    every env (from ``masks()``, bool ``(B, n)``): ``env.action_space.sample()`` is the random
    legal policy. ``contains`` is ``MultiDiscrete``'s (range only); legality is the mask's."""

    def __init__(
        self, num_envs: int, n: int, masks: Callable[[], np.ndarray], seed: int | None = None
    ) -> None:
        super().__init__(np.full((num_envs,), n), seed=seed)
        self._masks = masks

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is not None or probability is not None:
            raise ValueError("this action space samples legal actions from the env's own masks")
        return sample_legal(self._masks(), self.np_random).astype(self.dtype)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CPU; "cuda" without a device present is a clear error."""
    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but CUDA is not available here; use 'cpu'"
        )
    return dev


class BatchedVectorEnv(VectorEnv, metaclass=ABCMeta):
    """A batch of ``num_envs`` independent environments stepped by tensor operations.

    Subclasses set ``single_observation_space`` and ``single_action_space`` in ``__init__`` (then
    call :meth:`_finish_spaces`) and implement:

    * ``_reset_envs(ids)`` — start a new episode in the environments ``ids`` (int64 tensor),
      using ``self.env_seeds[ids]`` and ``self.episode_index[ids]``;
    * ``_observe()`` — the current observation of every environment, shape ``(B, ...)``;
    * ``_step_envs(actions)`` — advance every environment by one step and return
      ``(reward, terminated, truncated, info)``, each a ``(B,)`` tensor (info: dict of them);
      time limits are the family's own (truncation happens inside, not in a wrapper);
    * ``_state_tensors()`` / ``_load_state_tensors(d)`` — extra state for checkpoints.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": [],
    }
    has_action_mask: ClassVar[bool] = False

    def __init__(self, num_envs: int, device: str | torch.device | None = None) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = num_envs
        self.device = resolve_device(device)
        self.env_seeds = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.episode_index = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self._needs_reset = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._seeded = False
        self._np_rng = np.random.default_rng()

    def _finish_spaces(self) -> None:
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        if self.has_action_mask:
            n = int(self.single_action_space.n)
            self.single_action_space = MaskedDiscrete(n, lambda: self._masks_numpy()[0])
            self.action_space = MaskedMultiDiscrete(self.num_envs, n, self._masks_numpy)
        else:
            self.action_space = batch_space(self.single_action_space, self.num_envs)

    def action_masks(self) -> torch.Tensor:
        """(B, A) bool: the legal actions now (families with ``has_action_mask``)."""
        raise NotImplementedError(f"{type(self).__name__} has no action masks")

    def _masks_numpy(self) -> np.ndarray:
        return self.action_masks().cpu().numpy()

    def _with_mask(self, info: Info) -> Info:
        return {**info, "action_mask": self.action_masks()} if self.has_action_mask else info

    # -- the gymnasium.vector API --------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, Info]:
        """Reset every environment (or those in ``options["reset_mask"]``)."""
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        if options and "reset_mask" in options:
            mask = torch.as_tensor(options["reset_mask"], dtype=torch.bool, device=self.device)
            if mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask'] must have shape ({self.num_envs},), got {tuple(mask.shape)}"
                )
        if seed is not None:
            seeds = self._seed_tensor(seed)
            self.env_seeds = torch.where(mask, seeds, self.env_seeds)
            self.episode_index = torch.where(mask, 0, self.episode_index)
            self._seeded = True
        elif not self._seeded:
            drawn = torch.as_tensor(
                self._np_rng.integers(0, 2**62, size=self.num_envs), device=self.device
            )
            self.env_seeds = torch.where(mask, drawn, self.env_seeds)
            self._seeded = True
        else:
            self.episode_index = self.episode_index + mask.long()
        ids = torch.nonzero(mask).flatten()
        self._reset_envs(ids)
        self._needs_reset = self._needs_reset & ~mask
        return self._observe(), self._with_mask({})

    def step(
        self, actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Step every environment; those that ended on the previous step are reset instead
        (next-step autoreset: their reward is 0 and their flags are False on this step)."""
        actions = self._as_action_tensor(actions)
        reward, terminated, truncated, info = self._step_envs(actions)
        done_before = self._needs_reset
        if bool(done_before.any()):
            ids = torch.nonzero(done_before).flatten()
            self.episode_index = self.episode_index + done_before.long()
            self._reset_envs(ids)
            reward = torch.where(done_before, torch.zeros_like(reward), reward)
            terminated = terminated & ~done_before
            truncated = truncated & ~done_before
        # gymnasium's vector-info convention: "_key" marks the envs whose "key" is meaningful
        # (not those that were only reset on this step).
        info = {**info, **{"_" + k: ~done_before for k in info if not k.startswith("_")}}
        self._needs_reset = terminated | truncated
        return self._observe(), reward, terminated, truncated, self._with_mask(info)

    def close_extras(self, **kwargs: Any) -> None:
        pass

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to continue the same sequence of episodes exactly (CPU tensors)."""
        state = {
            "env_seeds": self.env_seeds,
            "episode_index": self.episode_index,
            "needs_reset": self._needs_reset,
            **self._state_tensors(),
        }
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(
                f"env state has keys {sorted(state)}, expected {sorted(expected)}: "
                "the checkpoint was written by a different environment or version"
            )
        for key, value in state.items():
            if value.shape[:1] != (self.num_envs,):
                raise ValueError(
                    f"env state {key!r} has batch size {tuple(value.shape[:1])}, expected {self.num_envs}"
                )
        self.env_seeds = state["env_seeds"].to(self.device)
        self.episode_index = state["episode_index"].to(self.device)
        self._needs_reset = state["needs_reset"].to(self.device)
        self._seeded = True
        self._load_state_tensors({k: v.to(self.device) for k, v in state.items()})

    # -- for subclasses ------------------------------------------------------------------------
    def _seed_tensor(self, seed: int | Sequence[int]) -> torch.Tensor:
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            if seed < 0:
                raise ValueError(f"seed must be a non-negative int, got {seed}")
            return torch.arange(self.num_envs, dtype=torch.int64, device=self.device) + int(seed)
        seeds = list(seed)
        if len(seeds) != self.num_envs or not all(isinstance(s, (int, np.integer)) for s in seeds):
            raise ValueError(f"seed must be an int or a list of {self.num_envs} ints, got {seed!r}")
        return torch.as_tensor(seeds, dtype=torch.int64, device=self.device)

    def _as_action_tensor(self, actions: Any) -> torch.Tensor:
        space = self.single_action_space
        if isinstance(space, gym.spaces.Discrete):
            tensor = torch.as_tensor(actions, device=self.device)
            if tensor.is_floating_point():
                if not bool(torch.all(tensor == torch.round(tensor))):
                    raise ValueError(
                        f"actions for a Discrete({space.n}) space must be integers, got {tensor.tolist()}"
                    )
            tensor = tensor.long().reshape(self.num_envs)
            bad = (tensor < space.start) | (tensor >= space.start + space.n)
            if bool(bad.any()):
                raise ValueError(
                    f"actions must be integers in [{space.start}, {space.start + space.n - 1}], "
                    f"got {tensor[bad].tolist()} for envs {torch.nonzero(bad).flatten().tolist()}"
                )
            return tensor
        tensor = torch.as_tensor(actions, dtype=torch.float64, device=self.device)
        return tensor.reshape((self.num_envs, *space.shape))

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        return None

    @abstractmethod
    def _reset_envs(self, ids: torch.Tensor) -> None:
        """See the class docstring."""

    @abstractmethod
    def _observe(self) -> torch.Tensor:
        """See the class docstring."""

    @abstractmethod
    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """See the class docstring."""


class BatchOfOneEnv(gym.Env):
    """The single ``gymnasium.Env`` view of a batched core: a batch of one on the CPU.

    Subclasses set ``core_class`` and pass their keyword arguments through; spaces, dynamics
    and rewards are the core's, so the single env and the vector env cannot disagree.
    """

    core_class: ClassVar[type[BatchedVectorEnv]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, **kwargs: Any) -> None:
        self.core = self.core_class(num_envs=1, device="cpu", **kwargs)
        self.observation_space = self.core.single_observation_space
        self.action_space = self.core.single_action_space
        self._ever_seeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not self._ever_seeded:
            seed = int(self.np_random.integers(0, 2**62))
        if seed is not None:
            self._ever_seeded = True
        obs, _ = self.core.reset(seed=seed)
        return self._to_numpy_obs(obs), self._with_mask({})

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if isinstance(self.action_space, gym.spaces.Discrete):
            if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
                arr = np.asarray(action)
                if arr.shape not in ((), (1,)) or not np.issubdtype(arr.dtype, np.integer):
                    raise ValueError(
                        f"action must be an int in [0, {self.action_space.n - 1}], got {action!r}"
                    )
        arr = np.asarray(action)
        if arr.size != int(np.prod(self.action_space.shape, dtype=np.int64)):
            raise ValueError(
                f"action must have shape {self.action_space.shape} for {self.action_space}, got {arr.shape}"
            )
        actions = torch.as_tensor(arr).reshape((1, *self.action_space.shape))
        reward, terminated, truncated, info = self.core._step_envs(
            self.core._as_action_tensor(actions)
        )
        obs = self.core._observe()
        return (
            self._to_numpy_obs(obs),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            self._with_mask({k: v[0].item() for k, v in info.items() if v.ndim == 1}),
        )

    def action_masks(self) -> np.ndarray:
        """The legal actions now, ``(A,)`` bool (envs whose core has action masks)."""
        return self.core.action_masks()[0].cpu().numpy()

    def _with_mask(self, info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "action_mask": self.action_masks()} if self.core.has_action_mask else info

    def _to_numpy_obs(self, obs: torch.Tensor) -> np.ndarray:
        return obs[0].cpu().numpy().astype(self.observation_space.dtype, copy=False)
