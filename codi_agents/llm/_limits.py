"""Request concurrency per endpoint: an adaptive limit that backs off on rate limits, and a health watch.

`AdaptiveLimiter` serves coroutines (chat calls); `ThreadLimiter` is the same policy for threads (the
embeddings server's calls, made from the embedding batcher's threads).

The limit follows AIMD (as TCP does): a rate-limit answer halves it, a run of successes raises it
by one, never above the configured maximum. In a run with Ray workers the maximum is the worker's
share of the endpoint's limit, which the driver moves (`set_maximum`); the limiter counts its
successes and rate limits so that the driver can adapt the limit of the whole cluster the same way
(`codi_agents.batch._shares`). The health watch stops a run early when most recent
requests to an endpoint have failed for a sustained period, instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

SUCCESSES_BEFORE_RAISE = 20
"""Successful requests in a row after which the limit goes up by one."""
RATE_LIMIT_COOLDOWN_SECONDS = 1.0
"""A burst of 429s halves the limit once, not once per answer: the requests in flight when the first
429 came back were sent before the limit went down (as TCP halves its window once per round trip)."""


class AdaptiveLimiter:
    """At most `limit` requests in flight; the limit adapts to rate limiting between 1 and `maximum`.

    Waiters are served first come, first served, and a released slot wakes exactly one of them, so
    the cost of a release does not grow with the number waiting. `pause` holds back new requests
    while the server asked for quiet (`Retry-After`).
    """

    def __init__(self, maximum: int, *, cooldown_seconds: float = RATE_LIMIT_COOLDOWN_SECONDS) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.cooldown_seconds = cooldown_seconds
        self._in_flight = 0
        self._successes = 0
        self.succeeded = 0
        """Successful requests since the start (the driver of a cluster reads the counters, never resets them)."""
        self.rate_limited = 0
        """429 answers since the start."""
        self._last_decrease = -math.inf
        self._resume_at = 0.0
        self._asked_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot for the duration of the block."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        while (wait := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(wait + random.uniform(0, 0.1 * wait))  # jitter: no stampede when the pause ends
        if self._in_flight < self.limit and not self._waiters:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # a release hands its slot over: `_in_flight` already counts this request
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()
            else:
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    def record_success(self) -> None:
        """A request succeeded: after enough of them in a row, allow one more in flight."""
        self.succeeded += 1
        self._successes += 1
        if self._successes >= SUCCESSES_BEFORE_RAISE and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0
            self._wake()

    def record_rate_limited(self) -> None:
        """The server said 429: halve the number of requests in flight (once per cooldown)."""
        self.rate_limited += 1
        self._successes = 0
        now = time.monotonic()
        if now - self._last_decrease >= self.cooldown_seconds:
            self.limit = max(1, self.limit // 2)
            self._last_decrease = now

    def set_maximum(self, maximum: int, *, follow: bool) -> None:
        """A new bound from outside (a worker's share of the cluster's limit). The limit never stays above
        it; with `follow` the limit moves to it, up as well as down (no rate limit since the bound was set)."""
        self.maximum = max(1, maximum)
        if follow or self.limit > self.maximum:
            self.limit = self.maximum
            self._successes = 0
            self._wake()

    def pause(self, seconds: float) -> None:
        """Send no new request for `seconds` (the server's `Retry-After`)."""
        self._asked_until = max(self._asked_until, time.monotonic() + seconds)
        self._resume_at = max(self._resume_at, self._asked_until)

    def hold(self, seconds: float) -> None:
        """Send no new request for `seconds`: a pause the server asked of another process (passed on by a
        cluster's driver); unlike `pause`, not reported back as this limiter's own (`asked_pause`)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        """Seconds left before this limiter lets a new request go (0 when not paused)."""
        return max(0.0, self._resume_at - time.monotonic())

    @property
    def asked_pause(self) -> float:
        """Seconds left of the pause the server asked of this limiter (0 when none)."""
        return max(0.0, self._asked_until - time.monotonic())

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._waiters)


class ThreadLimiter:
    """`AdaptiveLimiter` for callers on threads (the embedding batcher's): the same AIMD limit and pause.

    At most `limit` calls hold a slot; a 429 halves the limit (once per cooldown), a run of successes
    raises it by one up to `maximum`, and `pause` holds back new calls while the server asked for quiet.
    """

    def __init__(self, maximum: int, *, cooldown_seconds: float = RATE_LIMIT_COOLDOWN_SECONDS) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.cooldown_seconds = cooldown_seconds
        self._in_flight = 0
        self._successes = 0
        self._last_decrease = -math.inf
        self._resume_at = 0.0
        self._condition = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one call slot for the duration of the block (the calling thread waits for one)."""
        with self._condition:
            while True:
                pause = self._resume_at - time.monotonic()
                if pause > 0:
                    self._condition.wait(pause + random.uniform(0, 0.1 * pause))
                elif self._in_flight < self.limit:
                    break
                else:
                    self._condition.wait()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._condition:
                self._in_flight -= 1
                self._condition.notify()

    def record_success(self) -> None:
        """A call succeeded: after enough of them in a row, allow one more at once."""
        with self._condition:
            self._successes += 1
            if self._successes >= SUCCESSES_BEFORE_RAISE and self.limit < self.maximum:
                self.limit += 1
                self._successes = 0
                self._condition.notify()

    def record_rate_limited(self) -> None:
        """The server said 429: halve the number of calls at once (once per cooldown)."""
        with self._condition:
            self._successes = 0
            now = time.monotonic()
            if now - self._last_decrease >= self.cooldown_seconds:
                self.limit = max(1, self.limit // 2)
                self._last_decrease = now

    def pause(self, seconds: float) -> None:
        """Start no new call for `seconds` (the server's `Retry-After`)."""
        with self._condition:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self._in_flight


@dataclass
class HealthWatch:
    """Says an endpoint is down when most of its recent requests failed over a sustained period.

    The period starts at the oldest outcome of the first window in which most requests failed, and lasts while
    most still fail: a server that refuses connections at once fails many requests in a few milliseconds, so
    the span of one window alone would never reach `sustained_seconds`."""

    window: int = 20
    failure_share: float = 0.8
    sustained_seconds: float = 30.0
    _outcomes: deque[tuple[float, bool, str]] = field(default_factory=lambda: deque(maxlen=20))
    _failing_since: float | None = None

    def __post_init__(self) -> None:
        self._outcomes = deque(maxlen=self.window)

    def record(self, ok: bool, detail: str = "") -> None:
        """Note the outcome of one request attempt (`detail`: what the server answered)."""
        self._outcomes.append((time.monotonic(), ok, detail))
        failures = sum(1 for outcome in self._outcomes if not outcome[1])
        if len(self._outcomes) < self.window or failures < self.failure_share * self.window:
            self._failing_since = None
        elif self._failing_since is None:
            self._failing_since = self._outcomes[0][0]

    def failing(self) -> str | None:
        """The last server answer when the endpoint looks down, else None."""
        if self._failing_since is None or self._outcomes[-1][0] - self._failing_since < self.sustained_seconds:
            return None
        return next(detail for _, ok, detail in reversed(self._outcomes) if not ok)


@dataclass
class EndpointStats:
    """Counters for the progress display and the summary."""

    requests: int = 0
    retries: int = 0
    errors: int = 0
    rate_limited: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class EndpointSnapshot:
    """One endpoint at one moment: its counters and its concurrency, for progress views and summaries."""

    key: str
    requests: int
    retries: int
    errors: int
    rate_limited: int
    input_tokens: int
    output_tokens: int
    in_flight: int
    """Requests holding a slot."""
    limit: int
    """Requests allowed in flight now (adapts to rate limiting)."""
    maximum: int
    """The configured bound of `limit`."""
