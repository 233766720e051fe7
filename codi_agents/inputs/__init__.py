"""codi_agents.inputs."""
