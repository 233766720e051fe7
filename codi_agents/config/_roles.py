"""One resolved spec per role: who serves it and how it is called, decided once from `Settings`.

A role is served by a chat model passed in code (`instance`), a configured OpenAI-compatible
endpoint (`remote`), or the embedded local model (`embedded`). Every default that depends on that
choice lives here and nowhere else: temperature, reply length, timeout, concurrency, the
endpoint's down window, the context window. `llm._models` builds clients from these specs,
`Session` and the critic evaluation read the embedded decision and the judge weight from them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from codi_agents.config._settings import (
    DEFAULT_OPENAI_MODEL,
    ROLES,
    ChatClient,
    Role,
    Settings,
    StructuredOutputMethod,
    default_temperature,
    shown_url,
)

RoleSource = Literal["instance", "remote", "embedded"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
"""Where a role with an API key and no `base_url` is sent."""
DEFAULT_TIMEOUT_SECONDS = 120.0
"""Seconds one request may take on a remote endpoint (or a chat model passed in) unless `timeout` says otherwise."""
EMBEDDED_TIMEOUT_SECONDS = 300.0
"""One request at a time on two cores: a queue of them can take minutes."""
REMOTE_CONCURRENCY = 64
"""Requests in flight to one remote endpoint unless `max_concurrency` says otherwise."""
EMBEDDED_CONCURRENCY = 1
"""llama.cpp's Python server answers one request at a time."""
EMBEDDED_MAX_TOKENS: dict[Role, int] = {"user": 96, "assistant": 200, "critic": 320}
"""Bounded replies for the 135M model: short turns, and room for the judge's reasons and fields."""
DEFAULT_ENDPOINT_DOWN_SECONDS = 30.0
"""A run stops when most requests to an endpoint failed for this long, unless `endpoint_down_seconds` says otherwise."""


@dataclass(frozen=True)
class RoleSpec:
    """How one role is served, with every default filled in."""

    role: Role
    source: RoleSource
    """`instance` (a chat model given in code), `remote` (a configured endpoint) or `embedded`."""
    base_url: str | None
    """The endpoint's URL; None for an instance, for the embedded model (known once it runs) and for OpenAI."""
    api_key: SecretStr | None
    model: str | None
    """The model name on the endpoint; None for an instance and the embedded model (the server names it)."""
    temperature: float
    max_tokens: int | None
    timeout: float
    """Seconds one request may take; enforced once, by `RoleModel`."""
    max_retries: int | None
    concurrency: int
    """Requests in flight to this role's endpoint (roles on one endpoint share the first one's limit)."""
    endpoint_down_seconds: float
    context_window: int | None
    http_transport: Literal["aiohttp", "httpx"] | None
    """The transport of the `ChatOpenAI` built for this role (used when `client` is `langchain-openai`)."""
    client: ChatClient
    """What sends this role's requests when codi builds its model: codi's own client or `ChatOpenAI`."""
    method: StructuredOutputMethod

    @property
    def embedded(self) -> bool:
        """True when the embedded local model serves this role."""
        return self.source == "embedded"

    @property
    def endpoint_key(self) -> str | None:
        """The URL that identifies a remote role's server (roles with equal keys share limits and health)."""
        return (self.base_url or OPENAI_BASE_URL) if self.source == "remote" else None

    def describe(self) -> str:
        """`model @ url` for people and manifests; never the key, nor credentials written into the URL."""
        if self.source != "remote":
            return f"{self.model or '?'} @ {self.source}"
        return f"{self.model or '?'} @ {shown_url(self.endpoint_key or OPENAI_BASE_URL)}"


@dataclass(frozen=True)
class RoleSpecs:
    """The specs of every role, with the decisions that look at all of them."""

    specs: Mapping[Role, RoleSpec]

    def __getitem__(self, role: Role) -> RoleSpec:
        return self.specs[role]

    def __iter__(self) -> Iterator[RoleSpec]:
        """The specs in role order (a subset when only some roles are built, as for the critic alone)."""
        return iter([self.specs[role] for role in ROLES if role in self.specs])

    @property
    def embedded_roles(self) -> frozenset[Role]:
        """Roles the embedded model serves (small: prompts and outputs are tightened for it)."""
        return frozenset(spec.role for spec in self if spec.embedded)

    @property
    def needs_embedded_model(self) -> bool:
        """True when some role has neither a chat model given nor an endpoint configured."""
        return bool(self.embedded_roles)

    def judge_weight(self, setting: float | None, *, embedded: float, remote: float) -> float:
        """The judge's weight against the cheap signals: the setting, else the calibration's weight for
        the critic's kind of model (`embedded` or `remote`, the latter also for a chat model given in code)."""
        if setting is not None:
            return setting
        return embedded if self["critic"].embedded else remote


def resolve_roles(settings: Settings, instance_roles: Collection[Role] = ()) -> RoleSpecs:
    """The spec of every role from `settings`; `instance_roles` are served by chat models given in code."""
    return RoleSpecs({role: _spec(settings, role, role in instance_roles) for role in ROLES})


def _spec(settings: Settings, role: Role, instance: bool) -> RoleSpec:
    config = settings.endpoint_for(role)
    source: RoleSource = "instance" if instance else "remote" if config.configured else "embedded"
    embedded = source == "embedded"
    model = None
    if source == "remote":
        model = config.model or (None if config.base_url else DEFAULT_OPENAI_MODEL)
    return RoleSpec(
        role=role,
        source=source,
        base_url=config.base_url if source == "remote" else None,
        api_key=config.api_key if source == "remote" else None,
        model=model,
        temperature=default_temperature(config.temperature, role, embedded=embedded),
        max_tokens=config.max_tokens or (EMBEDDED_MAX_TOKENS[role] if embedded else None),
        timeout=config.timeout or (EMBEDDED_TIMEOUT_SECONDS if embedded else DEFAULT_TIMEOUT_SECONDS),
        max_retries=config.max_retries,
        concurrency=EMBEDDED_CONCURRENCY if embedded else config.max_concurrency or REMOTE_CONCURRENCY,
        endpoint_down_seconds=config.endpoint_down_seconds or DEFAULT_ENDPOINT_DOWN_SECONDS,
        context_window=settings.local_context_window if embedded else config.context_window,
        http_transport=config.http_transport,
        client=config.client or "codi",
        method=settings.structured_output_method,
    )
