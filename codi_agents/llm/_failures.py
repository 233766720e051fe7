"""What a failed model request means: retry it, count it against the server, or give up; and how long to wait.

Failures are classified by type and HTTP status (never by class name: langchain-openai re-raises
openai's errors as its own subclasses). A 429 means "busy", never "down"; a `Retry-After` header is
honoured up to a cap; otherwise backoff is exponential with jitter.
"""

from __future__ import annotations

import email.utils
import json
import random
import sys
import time
from collections.abc import Mapping

import aiohttp
import httpx
from tenacity import RetryCallState, wait_exponential_jitter


class HttpStatusError(Exception):
    """The server answered with an error status; the message is the server's own (its `error.message`).

    Raised by codi's own HTTP clients (chat and embeddings), whatever HTTP library they use; `status_code` and
    `headers` are what the functions below classify it by, as they do openai's errors."""

    def __init__(self, status_code: int, message: str, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.headers = headers
        super().__init__(message)

    @classmethod
    def of(cls, status_code: int, headers: Mapping[str, str], body: bytes, reason: str | None) -> HttpStatusError:
        """The error for an answer with `status_code`, its message read from an OpenAI-style error body."""
        try:
            parsed = json.loads(body)
            error = parsed.get("error") if isinstance(parsed, dict) else None
            message = error.get("message") if isinstance(error, dict) else error or parsed.get("message")
        except (ValueError, AttributeError):
            message = None
        text = body[:300].decode("utf-8", "replace")
        return cls(status_code, str(message or text or reason or f"HTTP {status_code}"), headers)


MAX_RETRY_AFTER_SECONDS = 120.0
"""The longest `Retry-After` codi waits; a server asking for more is asked again after this."""


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: rate limits, server errors, timeouts, dropped connections."""
    status = status_code(exc)
    if status is not None:
        return status in (408, 409, 429) or status >= 500
    # isinstance, not class names: langchain-openai >= 1.1 re-raises openai's errors as its own subclasses
    return isinstance(
        exc,
        (
            TimeoutError,
            ConnectionError,
            httpx.TransportError,
            aiohttp.ClientConnectionError,
            aiohttp.ClientPayloadError,
            *_openai_connection_errors(),
        ),
    )


def _openai_connection_errors() -> tuple[type[BaseException], ...]:
    """openai's connection error when the SDK is loaded (client = "langchain-openai"); without it none can
    have been raised, and codi's own client never imports it (it costs a quarter of a second at start)."""
    openai = sys.modules.get("openai")
    return (openai.APIConnectionError,) if openai is not None else ()


def says_server_is_down(exc: BaseException) -> bool:
    """True for failures that count towards stopping a run: 5xx, timeouts, dropped connections.

    A 429 means the server is up and busy (a long `Retry-After` storm is waited out, never a reason
    to stop); other 4xx answers are about one request, not the server."""
    return is_transient(exc) and status_code(exc) not in (408, 409, 429)


def describe_failure(exc: BaseException) -> str:
    """A one-line description of a failed request: status code and message, and for a failure without an
    HTTP answer what lies under it (a transport may report a refused connection as a timeout)."""
    status = status_code(exc)
    if status is not None:
        return f"HTTP {status}: {_first_line(exc)}"
    described = f"{type(exc).__name__}: {_first_line(exc)}"
    root = exc
    for _ in range(MAX_CAUSES):
        below = root.__cause__ or root.__context__
        if below is None:
            break
        root = below
    if root is not exc:
        described += f" (caused by {type(root).__name__}: {_first_line(root)})"
    return described


MAX_CAUSES = 8
"""How deep `describe_failure` follows an exception's causes."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """The delay a server asked for in `Retry-After` (seconds or HTTP date) or `retry-after-ms`."""
    headers = getattr(exc, "headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    if (milliseconds := headers.get("retry-after-ms")) is not None:
        try:
            return min(float(milliseconds) / 1000, MAX_RETRY_AFTER_SECONDS)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else min(max(parsed.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_SECONDS)


_backoff = wait_exponential_jitter(multiplier=0.5, max=30.0)


def wait_for_server(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    asked = retry_after_seconds(exc)
    if asked is not None:
        return asked + random.uniform(0, 0.1 * asked + 0.05)
    return _backoff(state)


def status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None
