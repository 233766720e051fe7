"""Chat models per role: given instances, configured OpenAI-compatible endpoints, or the embedded model.

Any `BaseChatModel` can be passed for a role. Otherwise a role with an endpoint configured gets a
`ChatOpenAI` for it (OpenAI, vLLM, Ollama, llama.cpp, ...), and a role with none gets the embedded
local model, whose server is shared by every such role. Roles that talk to the same server share
one concurrency limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel

from codi_agents.config._settings import DEFAULT_OPENAI_MODEL, ROLES, EndpointSettings, Role, Settings
from codi_agents.errors import ConfigError
from codi_agents.llm._calls import DEFAULT_TIMEOUT_SECONDS, Endpoint, RoleModel
from codi_agents.llm._limits import AdaptiveLimiter

ModelsArgument = BaseChatModel | Mapping[str, BaseChatModel] | None
"""One chat model for every role, or a mapping from role to chat model."""

REMOTE_CONCURRENCY = 64
"""Requests in flight to one remote endpoint unless `max_concurrency` says otherwise."""
LOCAL_CONCURRENCY = 1
"""llama.cpp's Python server answers one request at a time."""
LOCAL_MAX_TOKENS: dict[Role, int] = {"user": 96, "assistant": 200, "critic": 320}
"""Bounded replies for the 135M model: short turns, and room for the judge's reasons and fields."""
LOCAL_TEMPERATURES: dict[Role, float] = {"user": 0.6, "assistant": 0.2, "critic": 0.0}
"""A 135M model drifts off topic quickly: lower temperatures than for strong models (measured on prompts)."""
LOCAL_TIMEOUT_SECONDS = 300.0
"""One request at a time on two cores: a queue of them can take minutes."""


def role_instances(models: ModelsArgument) -> dict[Role, BaseChatModel]:
    """Normalise the `models` argument to a mapping from role to instance."""
    if models is None:
        return {}
    if isinstance(models, BaseChatModel):
        return dict.fromkeys(ROLES, models)
    unknown = set(models) - set(ROLES)
    if unknown:
        raise ConfigError(f"Unknown role(s) {', '.join(sorted(unknown))} in models; roles are {', '.join(ROLES)}.")
    return {role: model for role, model in models.items() if role in ROLES}  # type: ignore[misc]


def needs_local_model(settings: Settings, instances: Mapping[Role, BaseChatModel]) -> bool:
    """True when some role has neither an instance nor a configured endpoint."""
    return any(role not in instances and not settings.endpoint_for(role).configured for role in ROLES)


def build_role_models(
    settings: Settings,
    instances: Mapping[Role, BaseChatModel],
    *,
    local_url: str | None = None,
    local_model_name: str = "",
    local_context_window: int | None = None,
) -> dict[Role, RoleModel]:
    """A `RoleModel` per role: the given instance, the configured endpoint, or the embedded server."""
    endpoints: dict[str, Endpoint] = {}
    models: dict[Role, RoleModel] = {}
    for role in ROLES:
        config = settings.endpoint_for(role)
        if role in instances:
            chat = instances[role]
            key = f"instance:{id(chat)}"
            concurrency = config.max_concurrency or REMOTE_CONCURRENCY
            window, max_tokens = config.context_window, config.max_tokens
        elif config.configured:
            chat = openai_chat_model(config)
            key = config.base_url or "https://api.openai.com/v1"
            concurrency = config.max_concurrency or REMOTE_CONCURRENCY
            window, max_tokens = config.context_window, config.max_tokens
        else:
            if local_url is None:
                raise ConfigError(f"No model for the {role} role: configure an endpoint or start the embedded model.")
            local = config.model_copy(
                update={
                    "base_url": local_url,
                    "model": local_model_name,
                    "max_tokens": config.max_tokens or LOCAL_MAX_TOKENS[role],
                    "temperature": _explicit_temperature(settings, role, LOCAL_TEMPERATURES[role]),
                    "timeout": config.timeout or LOCAL_TIMEOUT_SECONDS,
                }
            )
            chat = openai_chat_model(local, api_key="embedded")
            key = local_url
            concurrency = LOCAL_CONCURRENCY
            window, max_tokens = local_context_window, local.max_tokens
        endpoint = endpoints.setdefault(key, Endpoint(key=key, limiter=AdaptiveLimiter(concurrency)))
        models[role] = RoleModel(
            role,
            chat,
            endpoint,
            method=settings.structured_output_method,
            timeout=config.timeout if role in instances or config.configured else LOCAL_TIMEOUT_SECONDS,
            max_retries=config.max_retries,
            context_window=window,
            max_tokens=max_tokens,
            owns_client=role not in instances,
        )
    return models


def _explicit_temperature(settings: Settings, role: Role, default: float) -> float:
    """The temperature the user set for this role, else for every role, else `default`."""
    for value in (getattr(settings, role).temperature, settings.endpoint.temperature):
        if value is not None:
            return float(value)
    return default


def openai_chat_model(config: EndpointSettings, api_key: str | None = None) -> BaseChatModel:
    """A `ChatOpenAI` for an OpenAI-compatible endpoint; retries are codi's, not the client's."""
    from langchain_openai import ChatOpenAI

    if config.base_url and not config.model:
        raise ConfigError(
            f"An endpoint is configured ({config.base_url}) but no model name: set `model` "
            "(--model, CODI_MODEL, or `model =` in the config file)."
        )
    key = api_key or (config.api_key.get_secret_value() if config.api_key else "not-needed")
    kwargs: dict[str, Any] = {
        "model": config.model or DEFAULT_OPENAI_MODEL,
        "api_key": key,
        "temperature": config.temperature,
        "max_retries": 0,
        # An httpx.Timeout (unhashable) makes langchain-openai build this model its own HTTP client
        # instead of sharing a process-wide cached one, which breaks once its event loop has closed.
        "timeout": httpx.Timeout(config.timeout or DEFAULT_TIMEOUT_SECONDS),
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if config.http_transport == "aiohttp" and (client := _aiohttp_client(config.timeout or DEFAULT_TIMEOUT_SECONDS)):
        kwargs["http_async_client"] = client
    if config.max_tokens and _is_openai(config.base_url):
        kwargs["max_tokens"] = config.max_tokens
    elif config.max_tokens:
        # langchain-openai sends `max_completion_tokens`, which llama.cpp's server and older vLLM and
        # Ollama builds ignore; the classic field is understood by every OpenAI-compatible server.
        kwargs["extra_body"] = {"max_tokens": config.max_tokens}
    return ChatOpenAI(**kwargs)


def _aiohttp_client(timeout: float) -> Any | None:
    """The OpenAI SDK's aiohttp transport, or None where this SDK version lacks it.

    With many requests in flight it costs less CPU than the default httpx pool, whose per-request
    bookkeeping grows with its open connections: measured with `bench/batch_throughput.py` at
    K = 128 and 200 ms per request, 5.4 instead of 6.8 CPU ms per request (throughput x 1.27).
    Its connections open lazily, inside the event loop of the first request.
    """
    import openai

    try:
        return openai.DefaultAioHttpClient(timeout=timeout)
    except (AttributeError, RuntimeError):  # an SDK without it, or without its `aiohttp` extra
        return None


def _is_openai(base_url: str | None) -> bool:
    return base_url is None or "api.openai.com" in base_url
