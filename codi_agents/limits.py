"""Request concurrency per endpoint: an adaptive limit that backs off on rate limits, and a health watch.

The limit follows AIMD (as TCP does): a rate-limit answer halves it, a run of successes raises it
by one, never above the configured maximum. The health watch stops a run early when most recent
requests to an endpoint have failed for a sustained period, instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

SUCCESSES_BEFORE_RAISE = 20
"""Successful requests in a row after which the limit goes up by one."""


class AdaptiveLimiter:
    """At most `limit` requests in flight; the limit adapts to rate limiting between 1 and `maximum`."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self._in_flight = 0
        self._successes = 0
        self._condition = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot for the duration of the block."""
        async with self._condition:
            await self._condition.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._condition:
                self._in_flight -= 1
                self._condition.notify_all()

    def record_success(self) -> None:
        """A request succeeded: after enough of them in a row, allow one more in flight."""
        self._successes += 1
        if self._successes >= SUCCESSES_BEFORE_RAISE and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0

    def record_rate_limited(self) -> None:
        """The server said 429: halve the number of requests in flight."""
        self._successes = 0
        self.limit = max(1, self.limit // 2)

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        return self._in_flight


@dataclass
class HealthWatch:
    """Says an endpoint is down when most of its recent requests failed over a sustained period."""

    window: int = 20
    failure_share: float = 0.8
    sustained_seconds: float = 30.0
    _outcomes: deque[tuple[float, bool, str]] = field(default_factory=lambda: deque(maxlen=20))

    def __post_init__(self) -> None:
        self._outcomes = deque(maxlen=self.window)

    def record(self, ok: bool, detail: str = "") -> None:
        """Note the outcome of one request attempt (`detail`: what the server answered)."""
        self._outcomes.append((time.monotonic(), ok, detail))

    def failing(self) -> str | None:
        """The last server answer when the endpoint looks down, else None."""
        if len(self._outcomes) < self.window:
            return None
        failures = [outcome for outcome in self._outcomes if not outcome[1]]
        span = self._outcomes[-1][0] - self._outcomes[0][0]
        if len(failures) >= self.failure_share * self.window and span >= self.sustained_seconds:
            return failures[-1][2]
        return None


@dataclass
class EndpointStats:
    """Counters for the progress display and the summary."""

    requests: int = 0
    retries: int = 0
    errors: int = 0
    rate_limited: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
