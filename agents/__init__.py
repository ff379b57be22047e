"""rlsuite's agents, one module each (installed as ``rlsuite.agents``); see ``base.Agent``."""
