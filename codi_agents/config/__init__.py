"""codi_agents.config: settings, the config file, the one resolver, and the resolved spec of each role."""

from codi_agents.config._discovery import with_discovered_models
from codi_agents.config._embedding import EmbeddingSpec, resolve_embedding
from codi_agents.config._resolve import load_settings, resolve_settings
from codi_agents.config._roles import RoleSpec, RoleSpecs, resolve_roles
from codi_agents.config._run_config import RunConfig, load_run_config, settings_for_run
from codi_agents.config._settings import EmbeddingSettings, EndpointSettings, Settings

__all__ = [
    "EmbeddingSettings",
    "EmbeddingSpec",
    "EndpointSettings",
    "RoleSpec",
    "RoleSpecs",
    "RunConfig",
    "Settings",
    "load_run_config",
    "load_settings",
    "resolve_embedding",
    "resolve_roles",
    "resolve_settings",
    "settings_for_run",
    "with_discovered_models",
]
