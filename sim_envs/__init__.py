"""sim_envs subpackage."""
