"""codi_agents.retrieval."""
