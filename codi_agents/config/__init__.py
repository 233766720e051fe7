"""codi_agents.config."""
