"""First contact with a server: an endpoint with a URL and no model name is asked which models it serves.

A vLLM or llama.cpp server usually serves one model; then `OPENAI_BASE_URL` alone is enough:
codi asks `GET {base_url}/models` (the OpenAI-compatible list), uses the only model, and says so
(a log line on `codi_agents.config`, which the command line shows). A server serving several
models, none, or not answering is a `ConfigError` that lists what it serves or what went wrong.
Each endpoint is asked once, however many roles use it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import httpx

from codi_agents.config._settings import ROLES, EndpointSettings, Role, Settings, shown_url
from codi_agents.errors import ConfigError

logger = logging.getLogger("codi_agents.config")

DISCOVERY_TIMEOUT_SECONDS = 15.0
"""How long the model list may take: a server still loading its model answers late or not at all."""
_SET_MODEL = "set `model` (--model, CODI_MODEL, or `model =` in the config file)"


def with_discovered_models(settings: Settings, instance_roles: Collection[Role] = ()) -> Settings:
    """`settings` with a model name for every role whose endpoint has a `base_url` but no `model`.

    Roles served by a chat model given in code are left alone. Returns `settings` itself when
    nothing is missing (no request is made)."""
    found: dict[tuple[str, str], str] = {}
    updates: dict[str, EndpointSettings] = {}
    for role in ROLES:
        endpoint = settings.endpoint_for(role)
        if role in instance_roles or not endpoint.base_url or endpoint.model:
            continue
        key = endpoint.api_key.get_secret_value() if endpoint.api_key else ""
        if (endpoint.base_url, key) not in found:
            found[endpoint.base_url, key] = only_served_model(endpoint)
        updates[role] = getattr(settings, role).model_copy(update={"model": found[endpoint.base_url, key]})
    return settings.model_copy(update=updates) if updates else settings


def only_served_model(endpoint: EndpointSettings) -> str:
    """The one model `endpoint` serves; a `ConfigError` when it serves several or none, or cannot be asked."""
    assert endpoint.base_url is not None
    shown = shown_url(endpoint.base_url)
    names = served_models(endpoint)
    if len(names) == 1:
        logger.info("%s serves one model, %s: using it (%s to choose another).", shown, names[0], _SET_MODEL)
        return names[0]
    if not names:
        raise ConfigError(f"The endpoint {shown} serves no model (its /models list is empty): {_SET_MODEL}.")
    raise ConfigError(
        f"The endpoint {shown} serves {len(names)} models and none is chosen: {_SET_MODEL} to one of "
        f"{', '.join(names)}."
    )


def served_models(endpoint: EndpointSettings) -> list[str]:
    """The model ids of `GET {base_url}/models` (OpenAI-compatible), in the server's order."""
    assert endpoint.base_url is not None
    url = endpoint.base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"} if endpoint.api_key else {}
    problem = (
        f"An endpoint is configured ({shown_url(endpoint.base_url)}) but no model name, and asking it which "
        f"models it serves (GET {shown_url(url)}) failed"
    )
    try:
        response = httpx.get(url, headers=headers, timeout=DISCOVERY_TIMEOUT_SECONDS)
        response.raise_for_status()
        listed = response.json().get("data")
    except httpx.HTTPStatusError as exc:
        raise ConfigError(f"{problem}: HTTP {exc.response.status_code}. Check the URL, or {_SET_MODEL}.") from exc
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"{problem}: {type(exc).__name__}: {exc}. Check that the server is up and the URL is right, or "
            f"{_SET_MODEL}."
        ) from exc
    if not isinstance(listed, list):
        raise ConfigError(f"{problem}: the answer has no `data` list. {_SET_MODEL[0].upper()}{_SET_MODEL[1:]}.")
    return [item["id"] for item in listed if isinstance(item, dict) and isinstance(item.get("id"), str)]
