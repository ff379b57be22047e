"""rlsuite: research reinforcement-learning environments and the agents that solve them.

Importing the package registers every environment id with gymnasium, so from any project::

    import gymnasium as gym
    import rlsuite  # noqa: F401  (or use the "rlsuite:" prefix below)

    env = gym.make("rlsuite/SOR-ShiftedLaplacian-v0")
    envs = gym.make_vec("rlsuite/SOR-ShiftedLaplacian-v0", num_envs=256, vectorization_mode="vector_entry_point")

``gym.make("rlsuite:rlsuite/SOR-ShiftedLaplacian-v0")`` imports and registers in one call.
"""

from __future__ import annotations

__version__ = "0.1.0"

from rlsuite.registry import AGENTS, ENVS, register_envs
from rlsuite.threads import configure_threads

register_envs()

__all__ = ["AGENTS", "ENVS", "__version__", "configure_threads", "register_envs"]
