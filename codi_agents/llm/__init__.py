"""codi_agents.llm."""
