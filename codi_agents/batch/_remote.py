"""The worker side of a run with Ray workers: a Session per worker, and what it does with a chunk of work.

Each worker builds one `Session` from a `WorkerSpec` (the run's settings with this worker's share of
every endpoint's requests in flight, the same embedding function and calibration as the driver, the
task by name) and keeps it for the whole run. The driver sends two kinds of items:

- `("index", documents)`: a slice of the corpus to chunk and index into the shared Chroma server
  (documents, or `DocRef`s the worker reads from the streamed corpus); each slice is sent once.
- `("simulate", planned)`: one planned conversation. Its passages are cut again here (chunking is
  deterministic and cheap); they were indexed in the first phase, whose completion marker gives back their
  stored flags (the detector's verdicts).

A result is `(kind, value, usage)`: `("ok", Conversation)`, or `(kind, (error type, message))` with kind
`stop` (an endpoint is down or the embedded model died: the run stops), `failed` (this conversation
only: server errors after retries) or `error` (an unexpected error; the driver counts them in a row).
Errors travel as their name and message: exception classes with custom constructors do not always
survive pickling. `usage` is (process id, the worker's endpoint snapshots, the passage-sentence vectors it has kept
and found kept so far): the driver adds the workers' requests, tokens and sentence vectors to its progress and
summary. Nothing here writes the run directory; the driver does.

Between chunks the driver sends each worker its shares of the endpoints' requests in flight
(`exchange_limits`, see `batch._shares`); the worker answers with its limiters' counters.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents._record import Conversation
from codi_agents.batch._plan import Planned
from codi_agents.batch._prepare import session_endpoints
from codi_agents.batch._shares import LimiterReport, ShareOrder, obey
from codi_agents.config._settings import Settings
from codi_agents.corpora._source import CorpusSource, DocRef
from codi_agents.critic._calibration import Calibration
from codi_agents.errors import CodiError, EndpointDownError, LocalModelError, RunError, ServerUnavailableError
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import chunk_document
from codi_agents.llm._models import ModelsArgument
from codi_agents.retrieval._index_counts import IndexCounts
from codi_agents.retrieval._indexing_threads import on_indexing_threads
from codi_agents.simulation._session import Session

INDEX = "index"
SIMULATE = "simulate"


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build its Session; pickled once per worker."""

    settings: Settings
    task: str
    embedding_function: EmbeddingFunction[Documents] | None
    calibration: Calibration
    models: ModelsArgument = None
    source: CorpusSource | None = None
    """The streamed corpus the plan's `DocRef`s point into; None when the driver sends documents."""
    local_server_url: str | None = None
    """The driver's embedded model server, for roles served by the embedded model (a local cluster only)."""
    index_collection: str | None = None
    """The driver's passage index collection on the shared Chroma server."""
    sentence_folder: str | None = None
    """The data folder of the Chroma server codi started on this machine (a local cluster): workers keep the
    critic's passage-sentence vectors there, as a run without workers keeps them beside its index."""


@dataclass
class WorkerState:
    """A worker's open Session and the corpus it reads from."""

    session: Session
    source: CorpusSource | None


def build_worker(spec: WorkerSpec) -> WorkerState:
    """Open the worker's Session (models, limits, the index client); runs once in each worker process."""
    session = Session(
        spec.settings,
        models=spec.models,
        embedding_function=spec.embedding_function,
        calibration=spec.calibration,
        task=spec.task,
        local_server_url=spec.local_server_url,
        index_collection=spec.index_collection,
    )
    session.open()
    if spec.sentence_folder and session.context is not None:
        session.context.index.keep_sentences(spec.sentence_folder)
    return WorkerState(session, spec.source)


async def process_chunk(state: WorkerState, chunk: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Do a chunk of items (all of one kind); a result per item, in any order."""
    if chunk and chunk[0][1][0] == INDEX:
        return [(item_id, ("ok", await on_indexing_threads(_index, state, payload))) for item_id, (_, payload) in chunk]
    planned: list[Planned[Any]] = [payload for _, (_, payload) in chunk]
    documents = await asyncio.to_thread(_documents, state, [item.document for item in planned])
    simulations = (_simulate(state.session, item, doc) for item, doc in zip(planned, documents, strict=True))
    outcomes = await asyncio.gather(*simulations)
    usage = (os.getpid(), [endpoint.snapshot() for endpoint in session_endpoints(state.session)], _sentences(state))
    return [(item.id, (*outcome, usage)) for item, outcome in zip(planned, outcomes, strict=True)]


def exchange_limits(state: WorkerState, orders: Sequence[ShareOrder]) -> list[LimiterReport]:
    """Take the driver's shares of the endpoints' requests in flight; report the limiters' counters."""
    return obey(session_endpoints(state.session), orders)


def _documents(state: WorkerState, wanted: Sequence[Document | DocRef]) -> list[Document]:
    """The documents themselves: given ones as they are, references read from the corpus (in one pass)."""
    refs = [item for item in wanted if isinstance(item, DocRef)]
    if not refs:
        return [item for item in wanted if isinstance(item, Document)]
    if state.source is None:
        raise RunError("A worker was sent corpus references but holds no corpus to read them from.")
    read = iter(state.source.read(refs))
    return [item if isinstance(item, Document) else next(read) for item in wanted]


def _sentences(state: WorkerState) -> tuple[int, int]:
    """The passage-sentence vectors this worker has kept and found kept, so far."""
    context = state.session.context
    if context is None:
        return 0, 0
    counts = context.index.counts
    return counts.sentence_vectors_kept, counts.sentence_vectors_reused


def _index(state: WorkerState, wanted: Sequence[Document | DocRef]) -> IndexCounts:
    """Chunk and index a slice of the corpus; what was embedded, and what was indexed already."""
    context = state.session.context
    if context is None:
        raise RunError("The worker's session is not open.")
    counts = IndexCounts()
    settings = state.session.settings
    for document in _documents(state, wanted):
        passages = chunk_document(document, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
        counts.note(added=context.index.add(document, passages), passages=len(passages))
    context.index.flush()  # in Chroma before the driver lets other workers search them
    return counts


async def _simulate(session: Session, item: Planned[Any], document: Document) -> tuple[str, Any]:
    try:
        passages = await session.aprepare(document)
        conversation: Conversation = await session.simulate(
            document, item.persona, item.flow, seed=item.seed, passages=passages
        )
    except (EndpointDownError, LocalModelError) as error:
        return "stop", (type(error).__name__, str(error))
    except (ServerUnavailableError, RunError, CodiError) as error:
        return "failed", (type(error).__name__, str(error))
    except Exception as error:
        return "error", (type(error).__name__, str(error))
    if conversation.id != item.id:
        raise AssertionError(f"planned id {item.id} but the worker's session made {conversation.id}")
    return "ok", conversation
