"""The single three-body environments: batches of one over :mod:`rlsuite.envs.threebody.vector`.

The class's documentation is its core's (:class:`~rlsuite.envs.threebody.vector.ThreeBodyVectorEnv`:
spaces, reward, episode ends); observations here are numpy arrays and rewards floats. Example::

    >>> import gymnasium as gym, rlsuite
    >>> env = gym.make("rlsuite/ThreeBody-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((13,), Discrete(10))
    >>> obs, reward, terminated, truncated, info = env.step(5)   # η = 10^-2.33
    >>> info["force_evaluations"] > 0
    True
"""

from __future__ import annotations

from rlsuite.envs.threebody.vector import ThreeBodyVectorEnv

from rlsuite.vector import BatchOfOneEnv


class ThreeBodyEnv(BatchOfOneEnv):
    __doc__ = ThreeBodyVectorEnv.__doc__
    core_class = ThreeBodyVectorEnv
