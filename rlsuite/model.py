"""The deterministic search model: what a planning agent needs from a batched env.

Search agents (MuZero-style planning, Q* search, exhaustive search) expand many positions that
the env is not in. An env with ``has_model = True`` (see :class:`rlsuite.vector.BatchedVectorEnv`)
exposes its rules as a pure, batched transition on *states*:

``env.get_state(index=None) -> S``
    A copy of the envs' current positions: all envs, env ``index`` (an int: a batch of one) or
    the envs listed in ``index`` (a sequence or int64 tensor of env indices).
``env.set_state(state, index=None) -> None``
    Put positions back (the same ``index`` forms; ``len(state)`` must match). A state taken on
    another instance, env class or device is refused with a ``ValueError``. The envs'
    ``episode_step`` becomes the state's.
``env.step_from(states, actions) -> ModelStep(next_states, rewards, terminated, next_action_masks)``
    The transition of any batch of states (``len(states)`` need not be ``num_envs``) under one
    action each, leaving the env untouched. ``rewards`` (float32) and ``terminated`` (bool) are
    ``(K,)``; ``next_action_masks`` is ``(K, A)`` bool (``None`` for families without masks). An
    illegal action raises a ``ValueError``, as ``step`` does. The model has no time limit:
    truncation (``max_steps``) is the env's, and ``states.episode_step`` tells a search agent
    how deep it is.
``env.observe_states(states) -> Tensor``
    The observations ``step`` would return in those states, ``(K, *single_observation_space.shape)``.
``env.reset(options={"state": states, "reset_mask": mask})``
    Starts the chosen envs' new episodes from given states instead of drawn ones.

States are :class:`BatchState` objects — a dataclass of tensors with a leading batch dimension
on the env's device — with ``select``, ``cat``, ``clone``, ``put`` and ``episode_step``. The
same state and action always give the same result (any randomness a transition needs is keyed by
the state's content, never drawn from a global generator), so ``step_from(get_state(), a)``
gives exactly what ``step(a)`` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, TypeVar

import torch

StateT = TypeVar("StateT", bound="BatchState")


@dataclass
class BatchState:
    """A batch of positions: every field is a tensor with a leading batch dimension (or ``None``
    for an optional cache). Subclasses add the fields and define :attr:`episode_step`."""

    def __len__(self) -> int:
        return int(self._tensors()[0].shape[0])

    @property
    def device(self) -> torch.device:
        return self._tensors()[0].device

    @property
    def episode_step(self) -> torch.Tensor:
        """(B,) int64: steps taken since the episode began."""
        raise NotImplementedError(f"{type(self).__name__} does not define episode_step")

    def clone(self: StateT) -> StateT:
        return type(self)(**{name: _clone(value) for name, value in self._items()})

    def select(self: StateT, ids: torch.Tensor | Sequence[int]) -> StateT:
        """The positions ``ids`` (int64 indices or a bool mask; a copy)."""
        index = torch.as_tensor(ids, device=self.device)
        index = index if index.dtype == torch.bool else index.long()
        return type(self)(**{name: _index(value, index) for name, value in self._items()})

    def put(self, ids: torch.Tensor, other: BatchState) -> None:
        """Overwrite positions ``ids`` with ``other`` in place (optional caches that ``self``
        does not hold are skipped)."""
        for name, target in self._items():
            source = getattr(other, name)
            if target is not None:
                if source is None:
                    raise ValueError(f"the state to put has no {name!r}; this one needs it")
                target[ids] = source

    @classmethod
    def cat(cls: type[StateT], states: Sequence[StateT]) -> StateT:
        """One batch of all positions of ``states``, in order."""
        if not states:
            raise ValueError("cat needs at least one state")
        return cls(
            **{
                f.name: None
                if getattr(states[0], f.name) is None
                else torch.cat([getattr(s, f.name) for s in states])
                for f in fields(cls)
            }
        )

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {name: value for name, value in self._items() if value is not None}

    def _items(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def _tensors(self) -> list[torch.Tensor]:
        return [value for _, value in self._items() if value is not None]


class ModelStep(NamedTuple):
    """The result of :meth:`~rlsuite.vector.BatchedVectorEnv.step_from`."""

    next_states: Any
    rewards: torch.Tensor
    terminated: torch.Tensor
    next_action_masks: torch.Tensor | None


def _clone(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clone()


def _index(t: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t[ids]
