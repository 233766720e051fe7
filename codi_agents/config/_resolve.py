"""The one settings resolver: layers of flags, a config file, `codi.toml` and the environment, into `Settings`.

Precedence, highest first:

1. flags: command-line options, or keyword arguments of the Python API (`top_k=5`,
   `critic={"model": "gpt-4o"}`; None values are ignored);
2. the config file (`--config FILE`, `config=` in Python): its settings layer, see
   `codi_agents.config._run_config` (settings at the top level or in `[settings]`; run keys ignored here);
3. `codi.toml` in the working directory, when there is one (its settings layer);
4. environment variables: `CODI_BASE_URL`, `CODI_API_KEY`, `CODI_MODEL` (every role) and
   `CODI_<ROLE>_BASE_URL`, `CODI_<ROLE>_API_KEY`, `CODI_<ROLE>_MODEL` (ROLE = USER, ASSISTANT,
   CRITIC); `OPENAI_BASE_URL` and `OPENAI_API_KEY` stand in for the first two;
   `CODI_EMBEDDING_BASE_URL`, `CODI_EMBEDDING_API_KEY`, `CODI_EMBEDDING_MODEL` (the `[embedding]` server);
5. defaults.

A file can point at an environment variable instead of holding a key: `api_key = "${MY_KEY}"`.
Every command and API entry point (`codi simulate/run/eval-critic`, `simulate`, `run`,
`iter_conversations`) resolves through `resolve_settings`; nothing else merges layers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from codi_agents.config._run_config import RunConfig, read_config_file
from codi_agents.config._settings import ROLES, Settings
from codi_agents.errors import ConfigError
from codi_agents.inputs._resources import describe_validation_error

DEFAULT_CONFIG_FILE = "codi.toml"
"""Read from the working directory, under the `--config` file, when it exists."""


def resolve_settings(
    *,
    flags: Mapping[str, Any] | None = None,
    config: str | Path | RunConfig | None = None,
    environ: Mapping[str, str] | None = None,
    base: Settings | None = None,
) -> Settings:
    """`Settings` from flags over a config file over `./codi.toml` over the environment.

    `config` is a config file's path, or a `RunConfig` already read from one (its `settings`
    layer is used; a run reads its file once). `base`: settings already resolved, which then stand
    for every layer below the flags. Raises `ConfigError` naming the file and the field.
    """
    env = os.environ if environ is None else environ
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if base is not None:
        layers.append(("settings", base.model_dump(exclude_unset=True)))
    else:
        layers += _lower_layers(config, env)
    layers.append(("flags", {key: value for key, value in (flags or {}).items() if value is not None}))
    merged: dict[str, Any] = {}
    for where, layer in layers:
        _deep_merge(merged, layer if where in _NOT_FILES else _expand_env(layer, env, where))
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        files = [where for where, layer in layers if layer and where not in _NOT_FILES]
        raise ConfigError(describe_validation_error(" and ".join(files) or "settings", exc)) from exc


_NOT_FILES = ("environment", "flags", "settings")
"""Layers whose values are taken as they are: `${NAME}` is expanded in files only."""


def load_settings(
    config_file: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """`resolve_settings` with keyword flags: `load_settings("codi.toml", seed=3, critic={"model": "m"})`."""
    return resolve_settings(flags=flags, config=config_file, environ=environ)


def _lower_layers(config: str | Path | RunConfig | None, env: Mapping[str, str]) -> list[tuple[str, Mapping[str, Any]]]:
    """The environment, `./codi.toml` and the config file's settings layer, lowest first."""
    layers: list[tuple[str, Mapping[str, Any]]] = [("environment", _from_environment(env))]
    default = Path(DEFAULT_CONFIG_FILE)
    given = config.source if isinstance(config, RunConfig) else (str(config) if config is not None else None)
    if default.is_file() and (given is None or not _same_file(default, Path(given))):
        layers.append((str(default), read_config_file(default)[0]))
    if isinstance(config, RunConfig):
        layers.append((config.source, config.settings))
    elif config is not None:
        layers.append((str(config), read_config_file(config)[0]))
    return layers


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    shared = {
        "base_url": env.get("CODI_BASE_URL") or env.get("OPENAI_BASE_URL"),
        "api_key": env.get("CODI_API_KEY") or env.get("OPENAI_API_KEY"),
        "model": env.get("CODI_MODEL"),
    }
    layer["endpoint"] = {key: value for key, value in shared.items() if value}
    for section in (*ROLES, "embedding"):
        prefix = f"CODI_{section.upper()}_"
        own = {field: env.get(prefix + field.upper()) for field in ("base_url", "api_key", "model")}
        if any(own.values()):
            layer[section] = {key: value for key, value in own.items() if value}
    return layer


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, env: Mapping[str, str], where: str) -> Any:
    """`value` with every `${NAME}` replaced by that environment variable; an unset one is an error."""
    if isinstance(value, Mapping):
        return {key: _expand_env(item, env, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_env(item, env, where) for item in value]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{where}: refers to environment variable {name}, which is not set. Set it.")
            return env[name]

        return _ENV_REFERENCE.sub(substitute, value)
    return value


def _deep_merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = dict(value)
        else:
            into[key] = value
