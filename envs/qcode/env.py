"""The single quantum-code environments: batches of one over their batched cores.

Each class's documentation is its core's; observations here are numpy arrays, rewards floats
and ``info["action_mask"]`` a numpy bool array (also ``env.unwrapped.action_masks()``, which
sb3-contrib's MaskablePPO calls). Example::

    >>> import gymnasium as gym, numpy as np, rlsuite
    >>> env = gym.make("rlsuite/QCode-TannerEdit-v0")
    >>> obs, info = env.reset(seed=0)
    >>> action = int(np.flatnonzero(info["action_mask"])[0])   # a legal edge toggle
    >>> obs, reward, terminated, truncated, info = env.step(action)
"""

from __future__ import annotations

from rlsuite.envs.qcode.tanner_edit import TannerEditVectorEnv
from rlsuite.envs.qcode.weight_reduction import WeightReductionVectorEnv

from rlsuite.vector import BatchOfOneEnv


class TannerEditEnv(BatchOfOneEnv):
    __doc__ = TannerEditVectorEnv.__doc__
    core_class = TannerEditVectorEnv
    core: TannerEditVectorEnv


class WeightReductionEnv(BatchOfOneEnv):
    __doc__ = WeightReductionVectorEnv.__doc__
    core_class = WeightReductionVectorEnv
    core: WeightReductionVectorEnv
