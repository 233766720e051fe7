"""Calling an embeddings server: the chat calls' retries, limits, health watch and errors, from threads.

`EmbeddingClient.embed(texts)` sends one `POST {base_url}/embeddings` and returns the vectors in the
order of `texts`, checked: one non-empty vector of finite numbers per text, all of one size. It is
called from the embedding batcher's threads, never from an event loop, so it uses a synchronous
`httpx.Client`; several threads share it, its connection pool and the endpoint's limits. Plain
httpx and `json`, not the OpenAI SDK: building the SDK's response models costs about 13 times the
CPU of reading the JSON (measured: 0.7 against 0.05 ms per 384-float vector), and a run embeds the
sentences of every reply its critic judges.

- Inputs are sent as strings (`encoding_format="float"`), never as token ids: only OpenAI's own
  models read tiktoken ids, and vLLM, TEI, Ollama and Infinity all accept strings and floats.
- 429, 5xx, timeouts and dropped connections are retried as chat calls are (`llm._failures`):
  `Retry-After` honoured and pausing every call, exponential backoff with jitter otherwise, a 429
  halving the calls in flight (`ThreadLimiter`). Other 4xx answers raise `RequestRejectedError`.
- A server that never answered, or most of whose answers failed for `endpoint_down_seconds`, raises
  `EndpointDownError`, which stops a run as a chat endpoint that is down does.
- Messages never show the key, even when a server quotes it back.
"""

from __future__ import annotations

import threading
from typing import Any, NoReturn

import httpx
import numpy as np
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from codi_agents._security import redact
from codi_agents.config._embedding import EmbeddingSpec
from codi_agents.config._settings import shown_url, url_credentials
from codi_agents.errors import EmbeddingError, EndpointDownError, RequestRejectedError, ServerUnavailableError
from codi_agents.llm._failures import (
    HttpStatusError,
    describe_failure,
    is_transient,
    retry_after_seconds,
    says_server_is_down,
    status_code,
    wait_for_server,
)
from codi_agents.llm._limits import EndpointStats, HealthWatch, ThreadLimiter


class EmbeddingClient:
    """One embeddings server: its HTTP client, its limits and health, its counters. Safe to share between threads."""

    def __init__(self, spec: EmbeddingSpec) -> None:
        self.spec = spec
        self.limiter = ThreadLimiter(spec.concurrency)
        self.health = HealthWatch(sustained_seconds=spec.endpoint_down_seconds)
        self.stats = EndpointStats()
        self.where = shown_url(spec.base_url)
        self._secrets = [spec.api_key.get_secret_value()] if spec.api_key else []
        self._secrets += url_credentials(spec.base_url)
        self._lock = threading.Lock()
        self._answered = False
        base = httpx.URL(spec.base_url)
        self._url = base.copy_with(path=base.path.rstrip("/") + "/embeddings")
        headers = {"Authorization": f"Bearer {spec.api_key.get_secret_value()}"} if spec.api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=spec.timeout,
            follow_redirects=True,  # httpx drops the key on a redirect to another host
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=spec.concurrency),
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def embed(self, texts: list[str]) -> np.ndarray:
        """The vectors of `texts` (one request), as a (len(texts), dimension) float32 array."""
        with self._lock:
            last_answer = self.health.failing()
        if last_answer is not None:
            self._raise(
                EndpointDownError,
                f"Most requests to the embeddings server at {self.where} have failed for a while; the last "
                f"answer was: {last_answer}. Check the server, then resume the run.",
            )
        retrying = Retrying(
            stop=stop_after_attempt(self.spec.max_retries + 1),
            wait=wait_for_server,
            retry=retry_if_exception(is_transient),
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._vectors(self._request(texts), len(texts))
        except (EmbeddingError, RequestRejectedError):
            raise
        except Exception as exc:
            self._failed(exc)
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _request(self, texts: list[str]) -> Any:
        with self.limiter.slot():
            with self._lock:
                self.stats.requests += 1
            body: dict[str, Any] = {
                "model": self.spec.model,
                "input": [text if text.strip() else " " for text in texts],  # servers refuse empty strings
                "encoding_format": "float",
            }
            if self.spec.dimensions:
                body["dimensions"] = self.spec.dimensions
            try:
                answer = self._client.post(self._url, json=body)
                if answer.status_code >= 400:
                    raise HttpStatusError.of(answer.status_code, answer.headers, answer.content, answer.reason_phrase)
                response = answer.json()
            except Exception as exc:
                if says_server_is_down(exc):
                    with self._lock:
                        self.health.record(False, self._clean(describe_failure(exc)))
                raise
        with self._lock:
            self._answered = True
            self.health.record(True)
        self.limiter.record_success()
        return response

    def _before_retry(self, state: RetryCallState) -> None:
        with self._lock:
            self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and status_code(exc) == 429:
            with self._lock:
                self.stats.rate_limited += 1
            self.limiter.record_rate_limited()
            if (asked := retry_after_seconds(exc)) is not None:
                self.limiter.pause(asked)  # every call to this server waits, not only this one

    def _failed(self, exc: Exception) -> NoReturn:
        """Raise the error a failed request means, after its retries."""
        with self._lock:
            self.stats.errors += 1
            answered = self._answered
        server = f"The embeddings server at {self.where} (model {self.spec.model})"
        attempts = self.spec.max_retries + 1
        if says_server_is_down(exc) and not answered:
            self._raise(
                EndpointDownError,
                f"{server} did not answer in {attempts} attempts: {describe_failure(exc)}. Check that it is up and "
                "that [embedding] base_url is right (vLLM, TEI, Ollama and Infinity serve http://HOST:PORT/v1), "
                "then run again.",
                exc,
            )
        if is_transient(exc):
            self._raise(
                ServerUnavailableError,
                f"{server} did not answer after {attempts} attempts: {describe_failure(exc)}. "
                "Check that it is up and reachable.",
                exc,
            )
        if status_code(exc) is not None:
            self._raise(
                RequestRejectedError,
                f"{server} refused the request: {describe_failure(exc)}. Check [embedding] model, the key, and "
                "`dimensions` (only some models take it).",
                exc,
            )
        self._raise(EmbeddingError, f"{server} could not be called: {describe_failure(exc)}.", exc)

    def _vectors(self, response: Any, expected: int) -> np.ndarray:
        """The response's vectors in input order, or an `EmbeddingError` saying what is wrong with them."""
        what = f"The embeddings server at {self.where} (model {self.spec.model})"
        data = response.get("data") if isinstance(response, dict) else None
        data = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
        if len(data) != expected:
            self._raise(EmbeddingError, f"{what} answered {len(data)} vectors for {expected} texts. Check the server.")
        if all(isinstance(item.get("index"), int) for item in data):
            data.sort(key=lambda item: item["index"])
        rows = [item.get("embedding") for item in data]
        empty = [i for i, row in enumerate(rows) if not row or not isinstance(row, list)]
        if empty:
            self._raise(EmbeddingError, f"{what} answered {len(empty)} empty vectors (for {expected} texts).")
        sizes = sorted({len(row) for row in rows if row})
        if len(sizes) > 1:
            self._raise(EmbeddingError, f"{what} answered vectors of different sizes in one batch: {sizes}.")
        if self.spec.dimensions and sizes[0] != self.spec.dimensions:
            self._raise(
                EmbeddingError,
                f"{what} answered vectors of size {sizes[0]}, not the {self.spec.dimensions} asked for in "
                "[embedding] dimensions: this model does not take `dimensions`; remove it.",
            )
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            self._raise(EmbeddingError, f"{what} answered vectors that are not lists of numbers: {exc}.")
        if not np.isfinite(vectors).all():
            self._raise(EmbeddingError, f"{what} answered vectors with NaN or infinite values.")
        return vectors

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def _raise(self, kind: type[Exception], message: str, cause: BaseException | None = None) -> NoReturn:
        """Raise `kind(message)` without the key; the cause is kept unless its own message quotes the key."""
        error = kind(self._clean(message))
        if cause is not None and self._clean(str(cause)) == str(cause):
            raise error from cause
        raise error from None
