"""Messages between the driver and its workers while they work: a `Coordinator` on the driver, one exchange
in flight per worker at most.

Every `EXCHANGE_SECONDS` each live worker that has answered its last message is sent the coordinator's
message for it; replies are collected without waiting (a worker that hangs simply never answers, and the
pool's chunk timeout deals with it). Keeping one exchange per worker in flight lets the coordinator
know which of its messages a reply answers: the last one sent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from codi_agents.distributed._cluster import import_ray
from codi_agents.errors import RunError

EXCHANGE_SECONDS = 0.5
"""How often each worker is sent the coordinator's message."""


class Coordinator(Protocol):
    """State the driver keeps for all workers; workers are numbered in the order the pool placed them."""

    def message(self, worker: int) -> Any:
        """What to send `worker` now."""

    def reply(self, worker: int, reply: Any) -> None:
        """`worker` answered the last message sent to it."""

    def lost(self, worker: int) -> None:
        """`worker` is gone for good (dead, or killed and confirmed gone): nothing it held is held any more."""


class _HasActor(Protocol):
    actor: Any
    alive: bool


class Exchanges:
    """The exchanges in flight, by Ray reference; `tick()` collects replies and sends the messages due."""

    def __init__(self, coordinator: Coordinator, every: float = EXCHANGE_SECONDS) -> None:
        self.coordinator = coordinator
        self.every = every
        self._pending: dict[Any, int] = {}
        self._gone: set[int] = set()
        self._next = 0.0

    def tick(self, slots: Sequence[_HasActor]) -> None:
        """Hand over the replies that came back, then send a message to each idle live worker when due."""
        ray = import_ray()

        if self._pending:
            done, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
            for ref in done:
                worker = self._pending.pop(ref)
                try:
                    reply = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                    continue  # the pool learns of the death from the worker's chunks
                except ray.exceptions.RayTaskError as error:
                    raise RunError(f"Worker {worker} could not answer the driver: {error.cause!r}") from error.cause
                if worker not in self._gone:
                    self.coordinator.reply(worker, reply)
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        busy = set(self._pending.values())
        for worker, slot in enumerate(slots):
            if slot.alive and worker not in busy and worker not in self._gone:
                self._pending[slot.actor.exchange.remote(self.coordinator.message(worker))] = worker

    def lost(self, worker: int) -> None:
        """`worker` is gone: no more messages to it, and the coordinator is told."""
        if worker not in self._gone:
            self._gone.add(worker)
            self.coordinator.lost(worker)
