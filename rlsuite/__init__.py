"""rlsuite: research reinforcement-learning environments and the agents that solve them.

Importing the package registers every environment id with gymnasium, so from any project::

    import gymnasium as gym
    import rlsuite  # noqa: F401  (or use the "rlsuite:" prefix below)

    env = gym.make("rlsuite/SOR-ShiftedLaplacian-v0")
    envs = gym.make_vec("rlsuite/SOR-ShiftedLaplacian-v0", num_envs=256, vectorization_mode="vector_entry_point")

``gym.make("rlsuite:rlsuite/SOR-ShiftedLaplacian-v0")`` imports and registers in one call.
Envs and agents that other installed packages declare under the entry-point groups
``rlsuite.envs`` / ``rlsuite.agents`` are added too (:func:`rlsuite.registry.load_plugins`).
"""

from __future__ import annotations

__version__ = "0.1.0"

import warnings

from rlsuite.registry import AGENTS, ENVS, load_plugins, register_envs
from rlsuite.threads import configure_threads

for _problem in load_plugins():  # envs and agents of installed packages (entry points)
    warnings.warn(_problem, stacklevel=2)
register_envs()

__all__ = ["AGENTS", "ENVS", "__version__", "configure_threads", "load_plugins", "register_envs"]
