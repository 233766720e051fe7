"""codi_agents.evaluation."""
