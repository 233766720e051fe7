"""codi_agents.simulation."""
