"""Options shared by commands: settings from flags, the console, and the secrets to keep out of output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from codi_agents.config._settings import Settings, load_settings

_secrets: list[str] = []

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Config file (TOML). Default: ./codi.toml if present.")
]
CalibrationOption = Annotated[
    Path | None,
    typer.Option(
        "--calibration", help="Critic calibration TOML (`codi eval-critic --fit` writes one); default: shipped."
    ),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint for every role, e.g. http://localhost:8000/v1."),
]
ModelOption = Annotated[str | None, typer.Option("--model", help="Model name on the endpoint, for every role.")]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", help="API key (prefer the OPENAI_API_KEY or CODI_API_KEY environment variable)."),
]


def settings_from_options(
    config: Path | None,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    **overrides: Any,
) -> Settings:
    """Settings from the command's flags over the config file over the environment."""
    endpoint = {
        key: value for key, value in {"base_url": base_url, "model": model, "api_key": api_key}.items() if value
    }
    if api_key:
        _secrets.append(api_key)
    settings = load_settings(config, endpoint=endpoint or None, **overrides)
    _secrets.extend(settings.secrets())
    return settings


def known_secrets() -> list[str]:
    """Every secret this process has seen: from flags, config files and the environment."""
    from_env = [value for name, value in os.environ.items() if name.endswith("API_KEY") and value]
    return [*_secrets, *from_env]
