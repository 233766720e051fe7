"""The in-process way of simulating a run: K asyncio workers sharing the run's one Session.

Within a conversation turns are sequential; across conversations nothing waits on anything else
(requests per endpoint have their own bound in `llm._calls`). Each document is chunked and indexed
once, however many conversations are about it. `batch._cluster_run` is the other way (Ray workers);
`BatchRun` picks one and owns the stop policy both follow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from codi_agents._record import Conversation
from codi_agents.batch._outcome import Outcomes
from codi_agents.batch._plan import Planned
from codi_agents.errors import CodiError, EndpointDownError, LocalModelError, RunError, ServerUnavailableError
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import Passage
from codi_agents.simulation._session import Session


class LocalSimulation:
    """Asyncio workers taking planned conversations from one shared iterator, in this process."""

    def __init__(
        self,
        session: Session,
        outcomes: Outcomes,
        pending: Iterator[Planned[Any]],
        *,
        deliver: Callable[[Conversation], Awaitable[None]],
        stop: Callable[[BaseException], None],
        unexpected: Callable[[BaseException | None], None],
        stopped: Callable[[], bool],
    ) -> None:
        """`unexpected` counts unexpected errors in a row (None: a success); `stopped` says the run is stopping."""
        self.session = session
        self.outcomes = outcomes
        self.pending = pending
        self._deliver, self._stop, self._unexpected, self._stopped = deliver, stop, unexpected, stopped
        self.in_flight = 0
        self._passages: dict[str, asyncio.Future[list[Passage]]] = {}

    async def worker(self) -> None:
        """Simulate planned conversations one after the other until none is left or the run stops."""
        while not self._stopped():
            item = next(self.pending, None)
            if item is None:
                return
            self.in_flight += 1
            try:
                conversation = await self._simulate(item)
            finally:
                self.in_flight -= 1
            if conversation is not None:
                await self.outcomes.finished(conversation)
                await self._deliver(conversation)

    async def _simulate(self, item: Planned[Document]) -> Conversation | None:
        """One conversation, or None when it failed (logged) or the run must stop (the stop policy)."""
        try:
            passages = await self._document_passages(item.document)
            conversation = await self.session.simulate(
                item.document, item.persona, item.flow, seed=item.seed, passages=passages
            )
        except (EndpointDownError, LocalModelError) as error:
            self._stop(error)
            return None
        except (ServerUnavailableError, RunError, CodiError) as error:  # this conversation only
            await self.outcomes.failed(item, error)
            return None
        except Exception as error:
            await self.outcomes.failed(item, error)
            self._unexpected(error)
            return None
        self._unexpected(None)
        if conversation.id != item.id:
            raise AssertionError(f"planned id {item.id} but the session made {conversation.id}")
        return conversation

    async def _document_passages(self, document: Document) -> list[Passage]:
        """Chunk and index a document once, however many conversations are about it."""
        future = self._passages.get(document.id)
        if future is None:
            future = asyncio.ensure_future(self.session.aprepare(document))
            self._passages[document.id] = future
        return await asyncio.shield(future)
