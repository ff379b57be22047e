"""rlsuite's environment families, one subpackage each (installed as ``rlsuite.envs``)."""
