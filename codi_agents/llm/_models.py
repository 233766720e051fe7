"""Chat models per role, built from the resolved role specs: given instances, endpoints, or the embedded model.

Any `BaseChatModel` can be passed for a role. Otherwise a role with an endpoint configured gets a
`ChatOpenAI` for it (OpenAI, vLLM, Ollama, llama.cpp, ...), and a role with none gets the embedded
local model, whose server is shared by every such role. Roles that talk to the same server share
one concurrency limit and one health watch. Every choice (temperature, timeout, limits) comes from
`codi_agents.config.resolve_roles`; this module only builds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel

from codi_agents.config._roles import OPENAI_BASE_URL, RoleSpec, RoleSpecs, resolve_roles
from codi_agents.config._settings import ROLES, Role, Settings
from codi_agents.errors import ConfigError
from codi_agents.llm._calls import Endpoint, RoleModel
from codi_agents.llm._limits import AdaptiveLimiter, HealthWatch
from codi_agents.llm._openai_http import OpenAIChatClient

ModelsArgument = BaseChatModel | Mapping[str, BaseChatModel] | None
"""One chat model for every role, or a mapping from role to chat model."""

EMBEDDED_API_KEY = "embedded"
"""The key sent to the embedded server, which checks none."""


def role_instances(models: ModelsArgument) -> dict[Role, BaseChatModel]:
    """Normalise the `models` argument to a mapping from role to instance."""
    if models is None:
        return {}
    if isinstance(models, BaseChatModel):
        return dict.fromkeys(ROLES, models)
    unknown = set(models) - set(ROLES)
    if unknown:
        raise ConfigError(f"Unknown role(s) {', '.join(sorted(unknown))} in models; roles are {', '.join(ROLES)}.")
    return {role: models[role] for role in ROLES if role in models}


def build_role_models(
    settings: Settings,
    instances: Mapping[Role, BaseChatModel],
    *,
    roles: RoleSpecs | None = None,
    local_url: str | None = None,
    local_model_name: str = "",
) -> dict[Role, RoleModel]:
    """A `RoleModel` per role: the given instance, the configured endpoint, or the embedded server at `local_url`.

    `roles`: the specs resolved from `settings` and the instances (resolved here when not given)."""
    specs = roles or resolve_roles(settings, instances.keys())
    endpoints: dict[str, Endpoint] = {}
    models: dict[Role, RoleModel] = {}
    for spec in specs:
        role = spec.role
        chat: BaseChatModel | Callable[[], BaseChatModel]
        name: str | None = None
        if spec.source == "instance":
            chat = instances[role]
            key = f"instance:{id(chat)}"
        else:
            if spec.source == "remote":
                base_url, name, key = spec.base_url, spec.model, spec.endpoint_key or ""
                build = functools.partial(openai_chat_model, spec)
            elif local_url is None:
                raise ConfigError(f"No model for the {role} role: configure an endpoint or start the embedded model.")
            else:
                base_url, name, key = local_url, local_model_name, local_url
                build = functools.partial(
                    openai_chat_model, spec, base_url=local_url, model=local_model_name, api_key=EMBEDDED_API_KEY
                )
            require_model_name(base_url, name)
            chat = build if spec.client == "codi" else build()  # with codi's client, LangChain's is built if asked
        client = None
        if spec.source != "instance" and spec.client == "codi":
            embedded = spec.source == "embedded"
            client = openai_http_client(
                spec,
                base_url=local_url if embedded else None,
                model=local_model_name if embedded else None,
                api_key=EMBEDDED_API_KEY if embedded else None,
            )
        endpoint = endpoints.get(key)
        if endpoint is None:
            health = HealthWatch(sustained_seconds=spec.endpoint_down_seconds)
            endpoint = endpoints[key] = Endpoint(key=key, limiter=AdaptiveLimiter(spec.concurrency), health=health)
        models[role] = RoleModel(
            role,
            chat,
            endpoint,
            method=spec.method,
            timeout=spec.timeout,
            max_retries=spec.max_retries,
            context_window=spec.context_window,
            max_tokens=spec.max_tokens,
            owns_client=spec.source != "instance",
            client=client,
            name=name or None,
        )
    return models


def require_model_name(base_url: str | None, model: str | None) -> None:
    """Raise ConfigError for an endpoint configured without a model name."""
    if base_url and not model:
        raise ConfigError(
            f"An endpoint is configured ({base_url}) but no model name: set `model` "
            "(--model, CODI_MODEL, or `model =` in the config file)."
        )


def openai_chat_model(
    spec: RoleSpec, *, base_url: str | None = None, model: str | None = None, api_key: str | None = None
) -> BaseChatModel:
    """A `ChatOpenAI` for a role's OpenAI-compatible endpoint (`base_url`, `model`, `api_key` override the spec's,
    for the embedded server). Retries and the timeout are `RoleModel`'s, not the client's."""
    from langchain_openai import ChatOpenAI

    base_url = base_url or spec.base_url
    model = model or spec.model
    require_model_name(base_url, model)
    key = api_key or (spec.api_key.get_secret_value() if spec.api_key else "not-needed")
    kwargs: dict[str, Any] = {
        "model": model,
        "api_key": key,
        "temperature": spec.temperature,
        "max_retries": 0,
        # No timeout of the client's own: `RoleModel` enforces `spec.timeout` on every call, the same way for
        # every kind of chat model. An httpx.Timeout (unhashable) also makes langchain-openai build this model
        # its own HTTP client instead of sharing a process-wide cached one, which breaks once its loop closed.
        "timeout": httpx.Timeout(None),
    }
    if base_url:
        kwargs["base_url"] = base_url
    if spec.http_transport == "aiohttp" and (client := _aiohttp_client()):
        kwargs["http_async_client"] = client
    if spec.max_tokens and _is_openai(base_url):
        kwargs["max_tokens"] = spec.max_tokens
    elif spec.max_tokens:
        # langchain-openai sends `max_completion_tokens`, which llama.cpp's server and older vLLM and
        # Ollama builds ignore; the classic field is understood by every OpenAI-compatible server.
        kwargs["extra_body"] = {"max_tokens": spec.max_tokens}
    return ChatOpenAI(**kwargs)


def openai_http_client(
    spec: RoleSpec, *, base_url: str | None = None, model: str | None = None, api_key: str | None = None
) -> OpenAIChatClient:
    """codi's own client for a role's OpenAI-compatible endpoint, sending what `openai_chat_model`'s model sends."""
    base_url = base_url or spec.base_url
    key = api_key or (spec.api_key.get_secret_value() if spec.api_key else None)
    return OpenAIChatClient(
        base_url=base_url or OPENAI_BASE_URL,
        model=model or spec.model or "",
        api_key=key or "not-needed",
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        max_tokens_field="max_completion_tokens" if _is_openai(base_url) else "max_tokens",
    )


def _aiohttp_client() -> Any | None:
    """The OpenAI SDK's aiohttp transport, or None where this SDK version lacks it.

    With many requests in flight it costs less CPU than the default httpx pool, whose per-request
    bookkeeping grows with its open connections: measured with `bench/batch_throughput.py` at
    K = 128 and 200 ms per request, 5.4 instead of 6.8 CPU ms per request (throughput x 1.27).
    Its connections open lazily, inside the event loop of the first request.
    """
    import openai

    try:
        return openai.DefaultAioHttpClient(timeout=None)  # the timeout is RoleModel's
    except (AttributeError, RuntimeError):  # an SDK without it, or without its `aiohttp` extra
        return None


def _is_openai(base_url: str | None) -> bool:
    return base_url is None or "api.openai.com" in base_url
