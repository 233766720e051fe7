"""Embeddings from a server: any OpenAI-compatible `POST /v1/embeddings` (vLLM, TEI, Ollama, Infinity, OpenAI).

`ServerEmbeddingFunction` takes the packaged MiniLM's place for indexing, retrieval and the critic
when `[embedding]` is set. It is a Chroma embedding function (registered, so a persisted collection
reopens with it; its config names the model and the environment variable of the key, never the key)
and tells the embedding batcher how to call it: `batch_size` texts per request, `max_concurrency`
requests in flight. The batcher runs it on threads, off the event loop; requests go through
`llm._embedding_calls.EmbeddingClient` (retries, limits, health, errors as for chat endpoints).

Every vector must have the size of the first one this function saw (or, reopening an index, the
size the index holds: `retrieval._index_check`); a server that changes model halfway is an error
naming the model and both sizes. The function pickles without its HTTP client (Ray workers build
their own), and `fingerprint()` names its vectors (model and size, not the URL) for index caches.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from pydantic import SecretStr

from codi_agents.config._embedding import EmbeddingSpec, resolve_embedding
from codi_agents.config._settings import Settings, shown_url
from codi_agents.errors import EmbeddingError
from codi_agents.llm._embedding_calls import EmbeddingClient

API_KEY_VARIABLE = "CODI_EMBEDDING_API_KEY"
"""Where a collection reopened by Chroma alone (`build_from_config`) finds the key: never in its config."""
PROBE_TEXT = "codi"
"""Embedded once to learn the vector size when nothing has been embedded yet."""


@register_embedding_function
class ServerEmbeddingFunction(EmbeddingFunction[Documents]):
    """Vectors from an OpenAI-compatible embeddings server, as `[embedding]` configures it."""

    def __init__(self, spec: EmbeddingSpec) -> None:
        self.spec = spec
        self._client: EmbeddingClient | None = None
        self._dimension: int | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerEmbeddingFunction | None:
        """The function `settings` configure (`[embedding]`), or None when they name no server."""
        spec = resolve_embedding(settings)
        return cls(spec) if spec is not None else None

    # -- what the batcher and fingerprints read ------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model's name on the server."""
        return self.spec.model

    @property
    def batch_size(self) -> int:
        """Texts per request."""
        return self.spec.batch_size

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at most."""
        return self.spec.concurrency

    @property
    def dimension(self) -> int:
        """The size of this model's vectors: the first ones seen, or one short text embedded to learn it."""
        if self._dimension is None:
            self._check_size(self._http().embed([PROBE_TEXT]).shape[1])
        assert self._dimension is not None
        return self._dimension

    def fingerprint(self) -> str:
        """What names this function's vectors: the model and their size.

        Not the URL: the same model gives the same vectors wherever it is served, so moving a server keeps
        an index built with it. Not the key, nor the batch size or limits, which change no vector."""
        return f"{self.name()}:{self.spec.model}:{self.dimension}"

    def describe(self) -> str:
        """`model @ url`, without the key."""
        return self.spec.describe()

    # -- embedding -----------------------------------------------------------------------------------------

    def __call__(self, input: Documents) -> Embeddings:
        texts = list(input)
        if not texts:
            return []
        size = self.spec.batch_size
        chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
        client = self._http()
        if len(chunks) == 1:
            parts = [client.embed(chunks[0])]
        else:  # a direct call with many texts (the batcher sends one request's worth): requests in parallel
            with ThreadPoolExecutor(max_workers=min(len(chunks), self.spec.concurrency)) as pool:
                parts = list(pool.map(client.embed, chunks))
        vectors = np.concatenate(parts)
        self._check_size(vectors.shape[1])
        return list(vectors)

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _http(self) -> EmbeddingClient:
        with self._lock:
            if self._client is None:
                self._client = EmbeddingClient(self.spec)
            return self._client

    def _check_size(self, size: int) -> None:
        with self._lock:
            if self._dimension is None:
                self._dimension = size
                return
            known = self._dimension
        if size != known:
            raise EmbeddingError(
                f"The embedding model {self.spec.model} at {shown_url(self.spec.base_url)} answered vectors of "
                f"size {size} after vectors of size {known}: the server changed model while codi used it. "
                "Serve one model for the whole run, then resume it."
            )

    # -- pickling (Ray workers) and Chroma's registry ------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "dimension": self._dimension}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = state["spec"]
        self._client = None
        self._dimension = state["dimension"]
        self._lock = threading.Lock()

    @staticmethod
    def name() -> str:
        return "codi_openai_compatible"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        """What Chroma stores with a collection: the model and the call settings, the URL without credentials,
        and the environment variable that holds the key; never the key."""
        spec = self.spec
        return {
            "model": spec.model,
            "base_url": shown_url(spec.base_url),
            "dimensions": spec.dimensions,
            "batch_size": spec.batch_size,
            "timeout": spec.timeout,
            "max_retries": spec.max_retries,
            "max_concurrency": spec.concurrency,
            "endpoint_down_seconds": spec.endpoint_down_seconds,
            "api_key_env_var": API_KEY_VARIABLE,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ServerEmbeddingFunction:
        """The function a stored config describes; the key comes from the environment variable it names."""
        key = os.environ.get(str(config.get("api_key_env_var") or API_KEY_VARIABLE))
        spec = EmbeddingSpec(
            base_url=str(config["base_url"]),
            api_key=SecretStr(key) if key else None,
            model=str(config["model"]),
            dimensions=int(config["dimensions"]) if config.get("dimensions") else None,
            batch_size=int(config["batch_size"]),
            timeout=float(config["timeout"]),
            max_retries=int(config["max_retries"]),
            concurrency=int(config["max_concurrency"]),
            endpoint_down_seconds=float(config["endpoint_down_seconds"]),
        )
        return ServerEmbeddingFunction(spec)
