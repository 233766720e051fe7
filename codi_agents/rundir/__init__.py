"""codi_agents.rundir."""
