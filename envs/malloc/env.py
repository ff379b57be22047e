"""The single mallocGame environments: batches of one over :mod:`rlsuite.envs.malloc.vector`.

The classes' documentation is their cores' (spaces, rewards, arguments); here observations are
numpy arrays, rewards floats, ``info["action_mask"]`` a numpy bool array and
``info["instance"]`` an int (the index into ``env.unwrapped.instance_names``). Example::

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
from rlsuite.envs.malloc.instances import Instance
from rlsuite.envs.malloc.vector import MallocGameVectorEnv, MallocPackVectorEnv, MallocVectorEnv

from rlsuite.vector import BatchOfOneEnv


class _MallocEnv(BatchOfOneEnv):
    core: MallocVectorEnv

    @property
    def instance(self) -> Instance:
        """The instance this episode plays."""
        return self.core.instance(0)

    @property
    def instance_names(self) -> tuple[str, ...]:
        """The listed instances' names; ``info["instance"]`` indexes them."""
        return self.core.instance_names

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "instance": int(self.core.instance_indices()[0])}

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
