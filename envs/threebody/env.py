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

A system of your own in G = 1 units (here the figure-eight, m = 1 each, period 6.326 units),
``interval`` in the same time unit (one period in 100 steps) and η chosen directly by a
one-value grid::

    >>> x, v = [0.97000436, -0.24308753], [0.466203685, 0.43236573]
    >>> env = gym.make(
    ...     "rlsuite/ThreeBody-v0",
    ...     initial_state={
    ...         "masses": [1.0, 1.0, 1.0],
    ...         "positions": [x, [-x[0], -x[1]], [0.0, 0.0]],
    ...         "velocities": [v, v, [-2 * v[0], -2 * v[1]]],
    ...     },
    ...     interval=6.3259140 / 100,
    ...     eta_grid=[0.01],
    ... )
    >>> obs, info = env.reset(seed=0)
    >>> for _ in range(100):
    ...     obs, reward, terminated, truncated, info = env.step(0)   # η = 0.01
    >>> round(float(info["time"]), 4), bool(info["energy_error"] < 1e-8)
    (6.3259, True)
"""

from __future__ import annotations

from rlsuite.envs.threebody.vector import ThreeBodyVectorEnv

from rlsuite.vector import BatchOfOneEnv


class ThreeBodyEnv(BatchOfOneEnv):
    __doc__ = ThreeBodyVectorEnv.__doc__
    core_class = ThreeBodyVectorEnv
