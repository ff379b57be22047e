"""The single mallocGame environments: batches of one over :mod:`rlsuite.envs.malloc.vector`.

The classes' documentation is their cores' (spaces, rewards, arguments); here observations are
numpy arrays, rewards floats and ``info["action_mask"]`` a numpy bool array. Example::

    >>> import gymnasium as gym, numpy as np, rlsuite
    >>> env = gym.make("rlsuite/MallocGame-v0")
    >>> obs, info = env.reset(seed=0)
    >>> action = int(np.flatnonzero(info["action_mask"])[-1])   # the highest legal offset
    >>> obs, reward, terminated, truncated, info = env.step(action)
    >>> saved = env.unwrapped.get_state()                        # a copy of the position
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rlsuite.envs.malloc.game import GameState
from rlsuite.envs.malloc.instances import Instance
from rlsuite.envs.malloc.vector import MallocGameVectorEnv, MallocPackVectorEnv, MallocVectorEnv

from rlsuite.vector import BatchOfOneEnv


class _MallocEnv(BatchOfOneEnv):
    core: MallocVectorEnv

    @property
    def instance(self) -> Instance:
        return self.core.instance(0)

    def get_state(self) -> GameState:
        """A copy of the current position (cheap: a few tensors)."""
        return self.core.get_state(0)

    def set_state(self, state: GameState) -> None:
        """Continue from a position taken with :meth:`get_state` on this env."""
        self.core.set_state(state, 0)

    def step_from(self, states: GameState, actions: Any) -> tuple[GameState, Any, Any, Any]:
        """The deterministic transition on a batch of positions (see the core's docstring)."""
        return self.core.step_from(states, actions)

    def buffer_offsets(self) -> np.ndarray:
        """Offsets (bytes, −1 = slow / not placed) of the buffers, in file row order: the
        memory map played so far (not the observation's layout, which is ``core.layout``)."""
        return self.core.buffer_offsets(0)


class MallocGameEnv(_MallocEnv):
    __doc__ = MallocGameVectorEnv.__doc__
    core_class = MallocGameVectorEnv


class MallocPackEnv(_MallocEnv):
    __doc__ = MallocPackVectorEnv.__doc__
    core_class = MallocPackVectorEnv
