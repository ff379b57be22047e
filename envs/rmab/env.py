"""The single coRMAB environments: batches of one over :mod:`rlsuite.envs.rmab.vector`.

The class's documentation is its core's (:class:`~rlsuite.envs.rmab.vector.CoRMABVectorEnv`:
families, spaces, reward); observations here are numpy arrays and rewards floats. Example::

    >>> import gymnasium as gym, numpy as np, rlsuite
    >>> env = gym.make("rlsuite/CoRMAB-Capacity-v0")
    >>> obs, info = env.reset(seed=0)
    >>> action = env.action_space.sample()            # a random *feasible* action
    >>> bool(env.unwrapped.is_feasible(action))
    True
    >>> obs, reward, terminated, truncated, info = env.step(action)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rlsuite.envs.rmab.instances import Instance
from rlsuite.envs.rmab.milp import MILP
from rlsuite.envs.rmab.vector import CoRMABVectorEnv

from rlsuite.vector import BatchOfOneEnv


class CoRMABEnv(BatchOfOneEnv):
    __doc__ = CoRMABVectorEnv.__doc__
    core_class = CoRMABVectorEnv
    core: CoRMABVectorEnv

    @property
    def instance(self) -> Instance:
        return self.core.instance(0)

    def feasible_set(self) -> MILP:
        return self.core.feasible_set(0)

    def is_feasible(self, action: Any) -> bool:
        return self.core.is_feasible(action, 0)

    def broken_rules(self, action: Any) -> list[str]:
        return self.core.broken_rules(action, 0)

    def sample_feasible(self, rng: np.random.Generator) -> np.ndarray:
        return self.core.sample_feasible(rng, 0)

    def arm_pulls(self, action: Any) -> np.ndarray:
        return self.core.arm_pulls(np.asarray(action))

    def action_names(self) -> list[str]:
        return self.core.action_names(0)
