"""The single-instance SOR environments: batches of one over :mod:`rlsuite.envs.sor.vector`.

Each class's documentation is its core's (see :class:`~rlsuite.envs.sor.vector.SORVectorEnv`
for spaces, rewards and episode ends); observations here are numpy arrays and rewards floats,
as ``gymnasium.Env`` users expect. Example::

    >>> import gymnasium as gym, rlsuite
    >>> env = gym.make("rlsuite/SOR-ShiftedLaplacian-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((4,), Discrete(20))
    >>> obs, reward, terminated, truncated, info = env.step(10)   # ω = 1.5
    >>> info["iterations"] == -reward
    True
"""

from __future__ import annotations

from rlsuite.envs.sor.vector import (
    SORHeat2DVectorEnv,
    SORShiftedLaplacianVectorEnv,
    SORSparseSequenceVectorEnv,
)

from rlsuite.vector import BatchOfOneEnv


class SORShiftedLaplacianEnv(BatchOfOneEnv):
    __doc__ = SORShiftedLaplacianVectorEnv.__doc__
    core_class = SORShiftedLaplacianVectorEnv


class SORHeat2DEnv(BatchOfOneEnv):
    __doc__ = SORHeat2DVectorEnv.__doc__
    core_class = SORHeat2DVectorEnv


class SORSparseSequenceEnv(BatchOfOneEnv):
    __doc__ = SORSparseSequenceVectorEnv.__doc__
    core_class = SORSparseSequenceVectorEnv
