"""The resolved embeddings server: `[embedding]` with every default filled in, decided once.

The twin of `RoleSpec` for the embedding model: where it is served, with which key, how many texts
per request and requests in flight, how long a request may take and how often it is retried. With no
`[embedding]` section there is no spec and the packaged MiniLM embeds in process.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from codi_agents.config._roles import DEFAULT_ENDPOINT_DOWN_SECONDS, OPENAI_BASE_URL
from codi_agents.config._settings import Settings, shown_url

DEFAULT_BATCH_SIZE = 32
"""Texts per request: TEI refuses more than 32 by default (`--max-client-batch-size`); others take more."""
DEFAULT_TIMEOUT_SECONDS = 60.0
"""Seconds one embeddings request may take: a batch of passages on a busy GPU server, not a long generation."""
DEFAULT_CONCURRENCY = 8
"""Requests in flight to the embeddings server unless `max_concurrency` says otherwise."""
DEFAULT_MAX_RETRIES = 4
"""As for chat requests (`llm._calls.DEFAULT_MAX_RETRIES`)."""


@dataclass(frozen=True)
class EmbeddingSpec:
    """How the embeddings server is called, with every default filled in."""

    base_url: str
    """The server's URL (OpenAI's when none is set)."""
    api_key: SecretStr | None
    model: str
    dimensions: int | None
    """The vector size asked for (sent as `dimensions`), or None for the model's own."""
    batch_size: int
    timeout: float
    max_retries: int
    concurrency: int
    endpoint_down_seconds: float

    def describe(self) -> str:
        """`model @ url` for people and manifests; never the key, nor credentials written into the URL."""
        return f"{self.model} @ {shown_url(self.base_url)}"


def resolve_embedding(settings: Settings) -> EmbeddingSpec | None:
    """The embeddings server `settings` configure, or None for the packaged MiniLM.

    The key: `[embedding] api_key`, else the shared endpoint's key when the shared endpoint is the same
    server (one vLLM serving chat and embeddings, or OpenAI for both); a key is never sent to another host."""
    config = settings.embedding
    if not config.configured or config.model is None:
        return None
    base_url = config.base_url or OPENAI_BASE_URL
    api_key = config.api_key
    shared = settings.endpoint
    if api_key is None and _same_server(base_url, shared.base_url or OPENAI_BASE_URL):
        api_key = shared.api_key
    return EmbeddingSpec(
        base_url=base_url,
        api_key=api_key,
        model=config.model,
        dimensions=config.dimensions,
        batch_size=config.batch_size or DEFAULT_BATCH_SIZE,
        timeout=config.timeout or DEFAULT_TIMEOUT_SECONDS,
        max_retries=DEFAULT_MAX_RETRIES if config.max_retries is None else config.max_retries,
        concurrency=config.max_concurrency or DEFAULT_CONCURRENCY,
        endpoint_down_seconds=(
            config.endpoint_down_seconds or shared.endpoint_down_seconds or DEFAULT_ENDPOINT_DOWN_SECONDS
        ),
    )


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")
