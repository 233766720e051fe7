"""The driver's limit of requests in flight per endpoint for all Ray workers (`batch._shares`), without Ray.

Workers are played by real `AdaptiveLimiter`s behind `obey`, the function each worker runs on the
driver's messages; the driver's messages and the workers' replies are passed by hand, in the order a
test chooses (late, or never), which is what can happen between processes.
"""

from __future__ import annotations

import logging
import random

import pytest

from codi_agents.batch._shares import SharedLimits, ShareOrder, obey
from codi_agents.errors import ConfigError
from codi_agents.llm._calls import Endpoint
from codi_agents.llm._limits import SUCCESSES_BEFORE_RAISE, AdaptiveLimiter

KEY = "http://model.test/v1"
Sent = dict[int, list[list[ShareOrder]]]
"""Worker -> the driver's messages on their way to it."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def workers(limits: SharedLimits, count: int, maximum: int) -> list[Endpoint]:
    """Workers' endpoints as `worker_settings` starts them: each with the first share."""
    return [Endpoint(KEY, AdaptiveLimiter(SharedLimits.first_share(maximum, count))) for _ in range(count)]


def exchange(limits: SharedLimits, worker: int, endpoints: list[Endpoint]) -> None:
    """One round trip: the driver's message to `worker`, the worker obeys, the driver reads its reply."""
    limits.reply(worker, obey([endpoints[worker]], limits.message(worker)))


def test_a_429_on_one_worker_lowers_the_share_of_every_worker(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limits = SharedLimits({KEY: 8}, 2, clock=clock)
    endpoints = workers(limits, 2, 8)
    for worker in (0, 1):
        exchange(limits, worker, endpoints)
    assert [endpoint.limiter.maximum for endpoint in endpoints] == [4, 4]

    endpoints[0].limiter.record_rate_limited()  # only worker 0 was answered 429
    endpoints[0].limiter.record_rate_limited()  # a burst counts once
    assert endpoints[0].limiter.limit == 2 and endpoints[1].limiter.limit == 4  # each process by itself
    with caplog.at_level(logging.DEBUG, logger="codi_agents.batch"):
        exchange(limits, 0, endpoints)  # the driver counts the 429s: the cluster's limit halves
        assert limits.limit(KEY) == 4 and limits.shares(KEY) == {0: 2, 1: 2}
        exchange(limits, 0, endpoints)
        exchange(limits, 1, endpoints)
    assert [endpoint.limiter.maximum for endpoint in endpoints] == [2, 2]
    assert [endpoint.limiter.limit for endpoint in endpoints] == [2, 2]  # worker 1 too, which saw no 429
    messages = [record.getMessage() for record in caplog.records]
    assert any("got 2 rate-limited answers" in m and "lowered from 8 to 4 of 8 (shares 2, 2)" in m for m in messages)
    assert "worker 1 lowered its requests in flight to http://model.test/v1 to 2" in messages


def test_a_quiet_period_raises_the_limit_as_one_process_would_and_never_above_the_maximum() -> None:
    clock = Clock()
    limits = SharedLimits({KEY: 8}, 2, clock=clock)
    endpoints = workers(limits, 2, 8)
    endpoints[1].limiter.record_rate_limited()
    for worker in (1, 0, 1):
        exchange(limits, worker, endpoints)
    assert limits.limit(KEY) == 4
    for _ in range(SUCCESSES_BEFORE_RAISE - 1):
        endpoints[0].limiter.record_success()
    exchange(limits, 0, endpoints)
    assert limits.limit(KEY) == 4  # one success short
    endpoints[1].limiter.record_success()  # successes count across the cluster
    exchange(limits, 1, endpoints)
    assert limits.limit(KEY) == 5
    for _ in range(20 * SUCCESSES_BEFORE_RAISE):
        endpoints[0].limiter.record_success()
    for worker in (0, 1, 0, 1):
        exchange(limits, worker, endpoints)
    assert limits.limit(KEY) == 8
    assert [endpoint.limiter.maximum for endpoint in endpoints] == [4, 4]
    assert [endpoint.limiter.limit for endpoint in endpoints] == [4, 4]  # they follow the shares up


def test_a_worker_with_429s_the_driver_has_not_counted_keeps_its_lower_limit() -> None:
    limits = SharedLimits({KEY: 8}, 2, clock=Clock())
    endpoints = workers(limits, 2, 8)
    message = limits.message(0)
    endpoints[0].limiter.record_rate_limited()  # after the driver wrote its message
    limits.reply(0, obey([endpoints[0]], message))
    assert endpoints[0].limiter.limit == 2 and endpoints[0].limiter.maximum == 4


def test_shares_never_add_up_to_more_than_the_maximum_whatever_the_order_of_messages() -> None:
    """Random 429s, successes, late and lost replies, a worker lost: the maximums the workers apply, plus the
    larger shares sent to them and not yet applied, never add up to more than the endpoint allows."""
    rng = random.Random(7)
    for maximum, count in ((8, 2), (5, 3), (64, 4), (3, 3)):
        clock = Clock()
        limits = SharedLimits({KEY: maximum}, count, clock=clock)
        endpoints = workers(limits, count, maximum)
        on_the_way: Sent = {worker: [] for worker in range(count)}
        live = list(range(count))

        def may_use(worker: int, endpoints: list[Endpoint] = endpoints, on_the_way: Sent = on_the_way) -> int:
            """The largest share `worker` may act on: the one it applies, or one on its way to it."""
            shares = [order.share for message in on_the_way[worker] for order in message]
            return max([endpoints[worker].limiter.maximum, *shares])

        lowest = maximum
        for step in range(3000):
            clock.now += rng.uniform(0, 0.3)
            worker = rng.choice(live)
            limiter = endpoints[worker].limiter
            action = rng.random()
            if action < 0.05:
                limiter.record_rate_limited()
            elif action < 0.5:
                limiter.record_success()
            elif action < 0.75 and not on_the_way[worker]:  # one message in flight per worker, as the pool does
                on_the_way[worker].append(limits.message(worker))
            elif on_the_way[worker]:
                limits.reply(worker, obey([endpoints[worker]], on_the_way[worker].pop()))
            if step == 1500 and count > 2:  # a worker dies; the pool tells the driver once it is gone
                live.remove(worker)
                limits.lost(worker)
            assert sum(may_use(w) for w in live) <= maximum, (maximum, count, step)
            assert all(endpoints[w].limiter.limit <= endpoints[w].limiter.maximum for w in live)
            lowest = min(lowest, limits.limit(KEY))
        assert lowest < maximum  # the 429s did lower the limit
        assert sum(limits.shares(KEY).values()) == limits.limit(KEY) <= maximum


def test_a_lost_worker_frees_its_share_for_the_others() -> None:
    limits = SharedLimits({KEY: 9}, 3, clock=Clock())
    endpoints = workers(limits, 3, 9)
    for worker in (0, 1, 2):
        exchange(limits, worker, endpoints)
    limits.lost(1)
    assert limits.shares(KEY) == {0: 5, 2: 4}
    for worker in (0, 2):
        exchange(limits, worker, endpoints)
    assert (endpoints[0].limiter.maximum, endpoints[2].limiter.maximum) == (5, 4)


def test_a_retry_after_pause_on_one_worker_pauses_the_others() -> None:
    clock = Clock()
    limits = SharedLimits({KEY: 4}, 2, clock=clock)
    endpoints = workers(limits, 2, 4)
    endpoints[0].limiter.pause(30)
    exchange(limits, 0, endpoints)
    exchange(limits, 1, endpoints)
    assert endpoints[1].limiter.paused_for > 25  # no new request before the server's time is up
    assert endpoints[1].limiter.asked_pause == 0  # held back, not asked: not reported as its own
    assert all(order.pause == 0 for order in limits.message(0))  # its own pause is not sent back to it


def test_more_workers_than_an_endpoint_allows_requests_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"allows 2 requests in flight .* 3 workers.*raise max_concurrency to 3"):
        SharedLimits({KEY: 2}, 3)
