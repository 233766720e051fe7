"""Options shared by commands, and the redactor that keeps one command's secrets out of what it prints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from codi_agents._security import redact
from codi_agents.config._settings import Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Config file (TOML): settings (as in codi.toml, top level or [settings]) and run keys (n, personas, "
        "flows, ...; used by `codi run`, ignored by the other commands). Read over ./codi.toml.",
    ),
]
CalibrationOption = Annotated[
    Path | None,
    typer.Option(
        "--calibration", help="Critic calibration TOML (`codi eval-critic --fit` writes one); default: shipped."
    ),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible endpoint for every role, e.g. http://localhost:8000/v1 (without --model: the one "
        "model it serves).",
    ),
]
ModelOption = Annotated[str | None, typer.Option("--model", help="Model name on the endpoint, for every role.")]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", help="API key (prefer the OPENAI_API_KEY or CODI_API_KEY environment variable)."),
]


class Redactor:
    """The secrets one command invocation knows, and `redactor(text)` to mask them.

    Built by `main` for each command from the environment's API keys; the command adds `--api-key`
    and the secrets of the settings it resolved (`Settings.secrets()`), so that an error message
    printed after the command failed never shows them."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._known: list[str] = list(secrets or [])

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Redactor:
        """A redactor that knows every `*API_KEY` variable of `environ`."""
        return cls([value for name, value in environ.items() if name.endswith("API_KEY") and value])

    def add(self, *secrets: str | None) -> None:
        """Know these secrets too (None and empty strings are skipped)."""
        self._known.extend(secret for secret in secrets if secret and secret not in self._known)

    def add_settings(self, settings: Settings) -> None:
        """Know the keys of `settings` and the credentials written into its URLs."""
        self.add(*settings.secrets())

    @property
    def secrets(self) -> list[str]:
        """Every secret known so far."""
        return list(self._known)

    def __call__(self, text: str) -> str:
        return redact(text, self._known)


def command_redactor(ctx: typer.Context) -> Redactor:
    """The redactor of this invocation: the one `main` made, or a new one when the app is called otherwise."""
    if not isinstance(ctx.obj, Redactor):
        ctx.obj = Redactor.from_environment(os.environ)
    return ctx.obj


def endpoint_flags(base_url: str | None, model: str | None, api_key: str | None) -> dict[str, Any] | None:
    """The `endpoint` settings layer of `--base-url`, `--model` and `--api-key` (None when none is given)."""
    given = {"base_url": base_url, "model": model, "api_key": api_key}
    return {key: value for key, value in given.items() if value} or None
