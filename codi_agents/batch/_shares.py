"""Requests in flight per endpoint across Ray workers: one adaptive limit per endpoint for the whole cluster.

One process keeps an `AdaptiveLimiter` per endpoint (AIMD: 429s halve the limit, once per cooldown;
`SUCCESSES_BEFORE_RAISE` successes in a row raise it by one; never above `max_concurrency`). With
workers, the driver keeps that limit for the whole cluster here, by the same rules, from the counters
each worker's limiters report (`LimiterReport`), and splits it into one share per live worker
(`ShareOrder`), which the worker's limiter takes as its maximum (`AdaptiveLimiter.set_maximum`). So a 429
seen by one worker lowers the share of every worker, and a quiet period raises them all again. A
`Retry-After` pause one worker was asked for is passed on to the others, as one process pauses the
whole endpoint. The messages travel every `EXCHANGE_SECONDS` (`codi_agents.distributed._exchange`).

Never more than `max_concurrency` in flight, even while shares move: the driver counts for each worker
the share it may be using (the last it confirmed, or a larger one sent since). A lower share is sent at
once; a higher one only as far as the others' shares leave room, so a share grows only once the
shares it takes from are confirmed lower. A worker that saw a 429 the driver has not counted yet keeps
its own lower limit. Every live worker keeps at least one request: a run with more workers than an
endpoint's `max_concurrency` is refused at start. A worker that is gone frees its share for the others.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from codi_agents.errors import ConfigError
from codi_agents.llm._calls import Endpoint
from codi_agents.llm._limits import RATE_LIMIT_COOLDOWN_SECONDS, SUCCESSES_BEFORE_RAISE

logger = logging.getLogger("codi_agents.batch")


@dataclass(frozen=True)
class LimiterReport:
    """One endpoint's limiter in a worker, as the worker reports it (the counters only ever grow)."""

    key: str
    succeeded: int
    rate_limited: int
    maximum: int
    """The share the worker applies now."""
    limit: int
    asked_pause: float
    """Seconds left of a pause the server asked of this worker (`Retry-After`)."""


@dataclass(frozen=True)
class ShareOrder:
    """What the driver tells a worker about one endpoint."""

    key: str
    share: int
    counted_rate_limits: int
    """The worker's 429s the driver has counted: a worker that has seen more keeps its own lower limit."""
    pause: float
    """Seconds another worker was asked to wait (`Retry-After`); 0 for none."""


def report(endpoint: Endpoint) -> LimiterReport:
    """The report of a worker's endpoint."""
    limiter = endpoint.limiter
    return LimiterReport(
        endpoint.key, limiter.succeeded, limiter.rate_limited, limiter.maximum, limiter.limit, limiter.asked_pause
    )


def obey(endpoints: Sequence[Endpoint], orders: Sequence[ShareOrder]) -> list[LimiterReport]:
    """A worker applies the driver's orders to its endpoints; the reports of all of them, after."""
    by_key = {endpoint.key: endpoint for endpoint in endpoints}
    for order in orders:
        endpoint = by_key.get(order.key)
        if endpoint is None:
            continue
        limiter = endpoint.limiter
        limiter.set_maximum(order.share, follow=limiter.rate_limited <= order.counted_rate_limits)
        if order.pause > 0:
            limiter.hold(order.pause)
    return [report(endpoint) for endpoint in endpoints]


@dataclass
class _Book:
    """One endpoint's limit for the whole cluster, and what each worker holds of it."""

    key: str
    maximum: int
    limit: int
    held: dict[int, int]
    """Worker -> the largest share it may be using: the last it confirmed, or a larger one sent since."""
    counted: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Worker -> its (successes, 429s) counted so far."""
    paused_until: dict[int, float] = field(default_factory=dict)
    successes: int = 0
    """Successes in a row across the cluster since the last raise or 429."""
    last_decrease: float = -math.inf


class SharedLimits:
    """The driver's limits of the endpoints the workers share; the pool's `Coordinator` for them."""

    def __init__(
        self,
        maximums: Mapping[str, int],
        workers: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        cooldown_seconds: float = RATE_LIMIT_COOLDOWN_SECONDS,
    ) -> None:
        for key, maximum in maximums.items():
            if maximum < workers:
                raise ConfigError(
                    f"The endpoint {key} allows {maximum} requests in flight (max_concurrency) but the run has "
                    f"{workers} workers, each needing at least one: raise max_concurrency to {workers} or more, "
                    "or use fewer workers."
                )
        self.live = list(range(workers))
        self.names = [f"worker {worker}" for worker in self.live]
        """How the log names each worker (`name_workers` sets their process ids and hosts)."""
        self.books = {
            key: _Book(key, maximum, maximum, held=dict.fromkeys(self.live, maximum // workers))
            for key, maximum in maximums.items()
        }
        self.clock = clock
        self.cooldown_seconds = cooldown_seconds

    @staticmethod
    def first_share(maximum: int, workers: int) -> int:
        """The share each worker starts with (the driver's first message gives out the remainder)."""
        return max(1, maximum // workers)

    def name_workers(self, names: Sequence[str]) -> None:
        """Name the workers in the log, in the pool's order."""
        self.names = list(names)

    def limit(self, key: str) -> int:
        """The cluster's limit of requests in flight to `key` now."""
        return self.books[key].limit

    def shares(self, key: str) -> dict[int, int]:
        """The live workers' shares of `key`'s limit: as even as can be, adding up to the limit."""
        book = self.books[key]
        base, extra = divmod(book.limit, len(self.live))
        return {worker: base + (position < extra) for position, worker in enumerate(self.live)}

    def message(self, worker: int) -> list[ShareOrder]:
        """The orders for `worker`: its share of every endpoint (as far as the others leave room), and pauses."""
        now = self.clock()
        orders = []
        for key, book in self.books.items():
            wanted = self.shares(key)[worker]
            held = book.held[worker]
            room = book.maximum - sum(share for other, share in book.held.items() if other != worker)
            share = wanted if wanted <= held else max(held, min(wanted, room))
            book.held[worker] = max(held, share)
            pause = max((until - now for other, until in book.paused_until.items() if other != worker), default=0.0)
            counted = book.counted.get(worker, (0, 0))[1]
            orders.append(ShareOrder(key, share, counted, max(0.0, pause)))
        return orders

    def reply(self, worker: int, reply: Sequence[LimiterReport]) -> None:
        """Count a worker's successes and 429s; adapt the cluster's limits as one process's limiter would."""
        if worker not in self.live:
            return
        now = self.clock()
        for reported in reply:
            book = self.books.get(reported.key)
            if book is None:
                continue
            succeeded, limited = book.counted.get(worker, (0, 0))
            book.counted[worker] = (reported.succeeded, reported.rate_limited)
            if reported.maximum < book.held[worker]:
                logger.debug(
                    "%s lowered its requests in flight to %s to %d", self.names[worker], book.key, reported.maximum
                )
            book.held[worker] = reported.maximum
            if reported.asked_pause > 0:
                book.paused_until[worker] = now + reported.asked_pause
            if reported.rate_limited > limited:
                self._lower(book, worker, reported.rate_limited - limited, now)
            elif reported.succeeded > succeeded:
                self._raise(book, reported.succeeded - succeeded)

    def lost(self, worker: int) -> None:
        """A worker is gone: its shares go to the others."""
        if worker not in self.live:
            return
        self.live.remove(worker)
        for book in self.books.values():
            book.held.pop(worker, None)
            book.counted.pop(worker, None)
            book.paused_until.pop(worker, None)

    def _lower(self, book: _Book, worker: int, answers: int, now: float) -> None:
        book.successes = 0
        if now - book.last_decrease < self.cooldown_seconds:
            return
        book.last_decrease = now
        before, book.limit = book.limit, max(len(self.live), book.limit // 2)
        if book.limit < before:
            shares = ", ".join(str(share) for share in self.shares(book.key).values())
            logger.info(
                "%s got %d rate-limited answer%s from %s: requests in flight for all workers lowered from %d to %d "
                "of %d (shares %s)",
                self.names[worker], answers, "s" if answers != 1 else "", book.key, before, book.limit,
                book.maximum, shares,
            )  # fmt: skip

    def _raise(self, book: _Book, successes: int) -> None:
        book.successes += successes
        steps = min(book.successes // SUCCESSES_BEFORE_RAISE, book.maximum - book.limit)
        if steps > 0:
            book.limit += steps
            book.successes -= steps * SUCCESSES_BEFORE_RAISE
            logger.debug("requests in flight to %s raised to %d of %d", book.key, book.limit, book.maximum)
