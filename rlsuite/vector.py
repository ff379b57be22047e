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

Autoreset. An env that ended on the previous step is reset on the next one, and its action on
that step is ignored: the base class replaces it by a legal *idle* action (``_idle_actions``)
before ``_step_envs`` runs, so a family never sees (or validates) the action of an env being
reset. Out-of-range or malformed actions are still errors.

Episodes. ``episode_step`` (``(B,)`` int64) counts the steps of each env's current episode; it
is 0 after a reset and travels in ``state_dict``.

Search model. A family with ``has_model = True`` implements the deterministic model of
:mod:`rlsuite.model` (``get_state``, ``set_state``, ``step_from``, ``observe_states``) and
``reset(options={"state": states})`` starts episodes from given states.

Seeding. ``reset(seed=s)`` gives environment ``i`` of the batch the seed ``s + i`` (gymnasium's
convention for vector envs); each later episode of that environment is numbered, and a
family draws its instance from the pair (seed, episode) with :mod:`rlsuite.keyed_random`, so an
environment's sequence of episodes does not depend on the batch it runs in.
"""

from __future__ import annotations

import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlsuite.model import BatchState, ModelStep

Info = dict[str, torch.Tensor]
RESET_OPTIONS = ("reset_mask", "state")


def sample_legal(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random legal action per row of the boolean ``masks`` (``(B, A)``)."""
    return np.argmax(rng.random(masks.shape) + masks, axis=1)  # legal entries lie in [1, 2)


class MaskedDiscrete(gym.spaces.Discrete):
    """``Discrete(n)`` of an env with action masks; ``contains`` is ``Discrete``'s.

    ``sample(mask=info["action_mask"])`` is gymnasium's way to draw a random legal action now.
    ``sample()`` without a mask draws from the actions that are legal in *every* state when the
    env has some (``always_legal()``, e.g. "stop"): a space does not know which state the env
    will be in when the action is played (``check_env`` samples before it resets). Envs whose
    every state has another legal set (``always_legal()`` is ``None``) draw from the current
    mask (``mask()``, a bool ``(n,)`` array)."""

    def __init__(
        self,
        n: int,
        mask: Callable[[], np.ndarray],
        always_legal: Callable[[], np.ndarray | None] = lambda: None,
        seed: int | None = None,
    ) -> None:
        super().__init__(n, seed=seed)
        self._mask = mask
        self._always_legal = always_legal

    def sample(self, mask: Any = None, probability: Any = None) -> np.int64:
        if mask is None and probability is None:
            legal = self._always_legal()
            mask = (self._mask() if legal is None else legal).astype(np.int8)
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
    """``None`` means CPU; a device string torch does not know (``"gpu"``, ``"gpu0"``) and
    "cuda" without a device present are clear errors."""
    if isinstance(device, torch.device):
        dev = device
    elif device is None or isinstance(device, str):
        try:
            dev = torch.device("cpu" if device is None else device)
        except RuntimeError:
            raise ValueError(
                f"device={device!r} is not a device; use 'cpu', 'cuda' or 'cuda:N' (N a GPU index)"
            ) from None
    else:
        raise TypeError(
            f"device must be a string such as 'cpu' or 'cuda:0' or a torch.device, got "
            f"{type(device).__name__} {device!r}"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device={str(device)!r}: rlsuite envs run on 'cpu' or 'cuda' ('cuda:N'), not "
            f"{dev.type!r}"
        )
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
    * ``_state_tensors()`` / ``_load_state_tensors(d)`` — extra state for checkpoints;
    * optionally ``_idle_actions()`` — a legal action per env, played in place of the ignored
      action of envs being reset (the default: the first legal action of the mask, the
      ``Discrete`` start, a ``Box``'s lower bound clipped to include 0, or zeros);
    * with ``has_model = True``: ``_get_model_state(ids)``, ``_set_model_state(ids, state)``
      (validate, then put the positions and ``_needs_reset`` of envs ``ids``), ``step_from``
      and ``observe_states`` (:mod:`rlsuite.model`).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": [],
    }
    has_action_mask: ClassVar[bool] = False
    has_model: ClassVar[bool] = False

    def __init__(self, num_envs: int, device: str | torch.device | None = None) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = num_envs
        self.device = resolve_device(device)
        self.env_seeds = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.episode_index = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.episode_step = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self._needs_reset = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._seeded = False
        self._np_rng = np.random.default_rng()

    def _finish_spaces(self) -> None:
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        if self.has_action_mask:
            n = int(self.single_action_space.n)
            self.single_action_space = MaskedDiscrete(
                n, lambda: self._masks_numpy()[0], self.always_legal_actions
            )
            self.action_space = MaskedMultiDiscrete(self.num_envs, n, self._masks_numpy)
        else:
            self.action_space = batch_space(self.single_action_space, self.num_envs)

    def action_masks(self) -> torch.Tensor:
        """(B, A) bool: the legal actions now (families with ``has_action_mask``)."""
        raise NotImplementedError(f"{type(self).__name__} has no action masks")

    def always_legal_actions(self) -> np.ndarray | None:
        """``(A,)`` bool: the actions legal in every state (e.g. "stop"), or ``None`` when no
        such set is declared; what the single env's ``action_space.sample()`` draws from."""
        return None

    def _masks_numpy(self) -> np.ndarray:
        return self.action_masks().cpu().numpy()

    def _with_mask(self, info: Info) -> Info:
        return {**info, "action_mask": self.action_masks()} if self.has_action_mask else info

    # -- the gymnasium.vector API --------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, Info]:
        """Reset every environment (or those in ``options["reset_mask"]``); with
        ``options["state"]`` (envs with a search model) their new episodes start from those
        states (one per reset env) instead of drawn ones."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; allowed: {list(RESET_OPTIONS)}")
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        if "reset_mask" in options:
            mask = torch.as_tensor(options["reset_mask"], dtype=torch.bool, device=self.device)
            if mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask'] must have shape ({self.num_envs},), got {tuple(mask.shape)}"
                )
        ids = torch.nonzero(mask).flatten()
        state = options.get("state")
        if state is not None:
            self._check_state_batch(state, len(ids))
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
        self._needs_reset = self._needs_reset & ~mask
        if state is None:
            self._reset_envs(ids)
            self.episode_step = torch.where(mask, 0, self.episode_step)
        else:
            self._put_state(ids, state)
        return self._observe(), self._with_mask({})

    def step(
        self, actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Step every environment; those that ended on the previous step are reset instead
        (next-step autoreset: their action is ignored, their reward is 0 and their flags are
        False on this step)."""
        actions = self._as_action_tensor(actions)
        ended = self._needs_reset
        any_ended = bool(ended.any())
        if any_ended:  # the family never sees the ignored actions of envs being reset
            idle = self._idle_actions().to(actions.dtype)
            actions = torch.where(ended.reshape(-1, *[1] * (actions.ndim - 1)), idle, actions)
        reward, terminated, truncated, info = self._step_envs(actions)
        self.episode_step = self.episode_step + 1
        if any_ended:
            ids = torch.nonzero(ended).flatten()
            self.episode_index = self.episode_index + ended.long()
            self._reset_envs(ids)
            self.episode_step = torch.where(ended, 0, self.episode_step)
            reward = torch.where(ended, torch.zeros_like(reward), reward)
            terminated = terminated & ~ended
            truncated = truncated & ~ended
        # gymnasium's vector-info convention: "_key" marks the envs whose "key" is meaningful
        # (not those that were only reset on this step).
        info = {**info, **{"_" + k: ~ended for k in info if not k.startswith("_")}}
        self._needs_reset = terminated | truncated
        return self._observe(), reward, terminated, truncated, self._with_mask(info)

    def _idle_actions(self) -> torch.Tensor:
        """A legal action per env ``(B, *action shape)``, played by envs being reset."""
        space = self.single_action_space
        if self.has_action_mask:
            return self.action_masks().to(torch.int8).argmax(dim=1)
        if isinstance(space, gym.spaces.Discrete):
            return torch.full((self.num_envs,), int(space.start), device=self.device)
        if isinstance(space, gym.spaces.Box):
            value = np.clip(np.zeros(space.shape), space.low, space.high)
            return torch.as_tensor(value, dtype=torch.float64, device=self.device).expand(
                self.num_envs, *space.shape
            )
        return torch.zeros((self.num_envs, *space.shape), dtype=torch.float64, device=self.device)

    # -- the deterministic search model (rlsuite.model) ----------------------------------------
    def env_indices(self, index: int | Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """The int64 env indices ``index`` names: all envs (``None``), one (an int) or a list."""
        if index is None:
            return torch.arange(self.num_envs, device=self.device)
        if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
            index = [int(index)]
        ids = torch.as_tensor(index, device=self.device)
        if ids.ndim != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
            raise ValueError(f"index must be None, an env index or a list of them, got {index!r}")
        ids = ids.long()
        if bool(((ids < 0) | (ids >= self.num_envs)).any()) or len(set(ids.tolist())) != len(ids):
            raise ValueError(
                f"index must be an env index in [0, {self.num_envs - 1}] or a list of distinct "
                f"ones, got {ids.tolist()}"
            )
        return ids

    def get_state(self, index: int | Sequence[int] | torch.Tensor | None = None) -> Any:
        """A copy of the positions of every env (or of ``index``): see :mod:`rlsuite.model`."""
        self._require_model()
        return self._get_model_state(self.env_indices(index))

    def set_state(
        self, state: Any, index: int | Sequence[int] | torch.Tensor | None = None
    ) -> None:
        """Put positions back into every env (or into ``index``); a state that is not this
        env's (another instance, env or device) is a ``ValueError``."""
        ids = self.env_indices(index)
        self._check_state_batch(state, len(ids))
        self._put_state(ids, state)

    def step_from(self, states: Any, actions: Any) -> ModelStep:
        """The deterministic transition of any batch of states (the env is unchanged)."""
        self._require_model()
        raise NotImplementedError(f"{type(self).__name__} does not implement step_from")

    def observe_states(self, states: Any) -> torch.Tensor:
        """The observations of any batch of states."""
        self._require_model()
        raise NotImplementedError(f"{type(self).__name__} does not implement observe_states")

    def _check_state_batch(self, state: Any, expected: int) -> None:
        self._require_model()
        if not isinstance(state, BatchState):
            raise TypeError(
                f"expected a batch of states from get_state(), got {type(state).__name__}"
            )
        if len(state) != expected:
            raise ValueError(f"the state holds {len(state)} positions, expected {expected}")

    def _put_state(self, ids: torch.Tensor, state: BatchState) -> None:
        self._set_model_state(ids, state)
        self.episode_step[ids] = state.episode_step.to(self.device)

    def _require_model(self) -> None:
        if not self.has_model:
            from rlsuite.registry import ids_with_model

            raise TypeError(
                f"{type(self).__name__} has no search model (get_state / set_state / step_from / "
                f"observe_states); the ids with one: {', '.join(ids_with_model())}"
            )

    def _get_model_state(self, ids: torch.Tensor) -> Any:
        raise NotImplementedError

    def _set_model_state(self, ids: torch.Tensor, state: Any) -> None:
        raise NotImplementedError

    def close_extras(self, **kwargs: Any) -> None:
        pass

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to continue the same sequence of episodes exactly (CPU tensors)."""
        state = {
            "env_seeds": self.env_seeds,
            "episode_index": self.episode_index,
            "episode_step": self.episode_step,
            "needs_reset": self._needs_reset,
            **self._state_tensors(),
        }
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.state_dict())
        if set(state) == expected - {"episode_step"}:  # written before episode_step existed
            warnings.warn(
                "the env state predates episode_step (rlsuite < 0.2): episode_step restarts at 0",
                stacklevel=2,
            )
            state = {**state, "episode_step": torch.zeros_like(state["episode_index"])}
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
        self.episode_step = state["episode_step"].to(self.device)
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

    def _action_batch(self, actions: Any, dtype: torch.dtype | None) -> torch.Tensor:
        """``actions`` as a tensor of ``num_envs`` actions of the single action space's shape;
        values that are not numbers (strings, ints beyond int64) or a batch of another size
        are a ``ValueError`` saying what is expected."""
        space = self.single_action_space
        shape = (self.num_envs, *space.shape)
        expected = f"a batch of {self.num_envs} actions for {space} (shape {shape}, numbers)"
        try:
            if isinstance(actions, torch.Tensor):
                tensor = actions.to(device=self.device, dtype=dtype or actions.dtype)
            else:
                array = np.asarray(actions)
                if array.dtype.kind not in "biuf":  # strings, objects (ints beyond int64)
                    raise TypeError(f"elements of dtype {array.dtype}")
                tensor = torch.as_tensor(array, dtype=dtype, device=self.device)
        except (TypeError, ValueError, OverflowError, RuntimeError) as err:
            raise ValueError(f"actions must be {expected}; got {actions!r:.120} ({err})") from None
        if tensor.numel() != int(np.prod(shape)):
            raise ValueError(
                f"actions must be {expected}; got shape {tuple(tensor.shape)} "
                f"({tensor.numel()} values for {self.num_envs} envs)"
            )
        return tensor

    def _as_action_tensor(self, actions: Any) -> torch.Tensor:
        space = self.single_action_space
        if isinstance(space, gym.spaces.Discrete):
            tensor = self._action_batch(actions, None)
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
        tensor = self._action_batch(actions, torch.float64)
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
        for key, allowed in (("device", "cpu"), ("num_envs", 1)):
            if key in kwargs and kwargs[key] != allowed:
                raise ValueError(
                    f"{key}={kwargs[key]!r}: the single env (gymnasium.make) is one env on the "
                    f"CPU; for a batch or another device use gymnasium.make_vec(id, num_envs=N, "
                    "vectorization_mode='vector_entry_point', device='cuda')"
                )
            kwargs.pop(key, None)
        self.core = self.core_class(num_envs=1, device="cpu", **kwargs)
        self.observation_space = self.core.single_observation_space
        self.action_space = self.core.single_action_space
        self._ever_seeded = False
        self._episode_over = True  # step() needs a reset() first

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``options={"state": state}`` (envs with a search model) starts it
        from ``state``, a batch of one from ``core.get_state()``."""
        super().reset(seed=seed)
        if seed is None and not self._ever_seeded:
            seed = int(self.np_random.integers(0, 2**62))
        if seed is not None:
            self._ever_seeded = True
        obs, _ = self.core.reset(seed=seed, options=options)
        self._episode_over = bool(self.core._needs_reset[0])
        return self._to_numpy_obs(obs), self._with_mask({})

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._episode_over:
            raise RuntimeError(
                "step() needs a running episode: call reset() first, and again after an "
                "episode has terminated or been truncated"
            )
        if isinstance(self.action_space, gym.spaces.Discrete):
            low, n = int(self.action_space.start), int(self.action_space.n)
            if isinstance(action, int) and not isinstance(action, bool):
                if not low <= action < low + n:  # before numpy: 2**70 fits no int64
                    raise ValueError(
                        f"action must be an int in [{low}, {low + n - 1}], got {action}"
                    )
            if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
                arr = np.asarray(action)
                if arr.shape not in ((), (1,)) or not np.issubdtype(arr.dtype, np.integer):
                    raise ValueError(
                        f"action must be an int in [0, {self.action_space.n - 1}], got {action!r}"
                    )
        arr = np.asarray(action)
        if arr.dtype.kind not in "biuf":  # strings, None, ints beyond int64 (object arrays)
            raise ValueError(
                f"action must be numeric, of shape {self.action_space.shape} for "
                f"{self.action_space}; got {action!r}"
            )
        shape = self.action_space.shape
        # a Discrete action is a scalar (or one element); a one-element Box takes a scalar too
        allowed = (shape, ()) if int(np.prod(shape, dtype=np.int64)) == 1 else (shape,)
        if arr.shape not in allowed:
            raise ValueError(
                f"action must have shape {shape} for {self.action_space}, got {arr.shape}"
            )
        actions = torch.as_tensor(arr).reshape((1, *self.action_space.shape))
        reward, terminated, truncated, info = self.core._step_envs(
            self.core._as_action_tensor(actions)
        )
        self.core.episode_step = self.core.episode_step + 1
        self.core._needs_reset = terminated | truncated
        self._episode_over = bool(terminated[0] | truncated[0])
        obs = self.core._observe()
        return (
            self._to_numpy_obs(obs),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            self._with_mask({k: v[0].item() for k, v in info.items() if v.ndim == 1}),
        )

    # -- the search model of the core (envs with core.has_model; rlsuite.model) ----------------
    def get_state(self) -> Any:
        """A copy of the current position (a batch of one)."""
        return self.core.get_state(0)

    def set_state(self, state: Any) -> None:
        """Continue from a position taken with :meth:`get_state` (a batch of one)."""
        self.core.set_state(state, 0)
        self._episode_over = bool(self.core._needs_reset[0])

    def step_from(self, states: Any, actions: Any) -> ModelStep:
        """The deterministic transition of any batch of positions; the env is unchanged."""
        return self.core.step_from(states, actions)

    def observe_states(self, states: Any) -> torch.Tensor:
        """The observations of any batch of positions (torch, ``(K, ...)``)."""
        return self.core.observe_states(states)

    def action_masks(self) -> np.ndarray:
        """The legal actions now, ``(A,)`` bool (envs whose core has action masks)."""
        return self.core.action_masks()[0].cpu().numpy()

    def _with_mask(self, info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "action_mask": self.action_masks()} if self.core.has_action_mask else info

    def _to_numpy_obs(self, obs: torch.Tensor) -> np.ndarray:
        return obs[0].cpu().numpy().astype(self.observation_space.dtype, copy=False)
