"""Everything a batch run does before its first conversation: plan, lock, check, read back, open.

`plan_run` reads the corpus, adjusts the settings for a batch run and builds the (unopened)
`Session` and the plan: nothing is written, so `codi run --dry-run` stops there. `prepare_run`
then takes the run directory's lock, refuses another run's files or a changed config, reads back
what earlier sessions finished (repairing a torn tail) and opens the session, giving a
`PreparedRun`. The run's adjustments to the settings happen here, before the Session is built; where the
passage index lives (the shared cache, by default) is decided once the directory is locked (`_index_choice`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents.batch._dedup import NearDuplicates, texts_of_record
from codi_agents.batch._index_choice import IndexPlacement, place_index
from codi_agents.batch._manifest import (
    ManifestParts,
    check_fingerprint,
    make_manifest,
    run_inputs,
    session_ended,
)
from codi_agents.batch._plan import Plan, ordered_documents, weighted_flows, weighted_personas
from codi_agents.batch._streamed import RunCorpus, needs_stream, scan_for_run
from codi_agents.batch._summary import Tally
from codi_agents.config._run_config import RunConfig, settings_for_run
from codi_agents.config._settings import Settings
from codi_agents.corpora._eager import read_corpus
from codi_agents.corpora._source import CorpusSource
from codi_agents.errors import ConfigError
from codi_agents.inputs._documents import Document
from codi_agents.llm._calls import Endpoint
from codi_agents.llm._models import ModelsArgument
from codi_agents.retrieval._embeddings import embedding_identity
from codi_agents.rundir._files import read_run_file
from codi_agents.rundir._layout import RunLayout
from codi_agents.rundir._lock import RunLock
from codi_agents.rundir._models import RunManifest
from codi_agents.rundir._writer import check_directory, prepare_directory, scan_records
from codi_agents.simulation._session import Session
from codi_agents.tasks import get_task

logger = logging.getLogger("codi_agents.batch")


@dataclass(frozen=True)
class RunPlan:
    """A run's plan and the session that will carry it out (not opened yet)."""

    plan: Plan[Any]
    """Over `Document`s, or over `DocRef`s into `source` (a run with workers)."""
    corpus: RunCorpus
    session: Session
    inputs: dict[str, Any]
    """What the run's fingerprint covers, by part."""
    source: CorpusSource | None = None
    """The streamed corpus the plan's references point into (workers read from it)."""


@dataclass
class PreparedRun:
    """A run ready to start: the directory locked and read back, the session open, the manifest made."""

    planned: RunPlan
    layout: RunLayout | None
    lock: RunLock | None
    manifest: RunManifest | None
    """This session's manifest (earlier sessions' history included); None without a run directory."""
    tally: Tally = field(default_factory=Tally)
    """Finished conversations, read back from earlier sessions."""
    done: set[str] = field(default_factory=set)
    dropped: int = 0
    """Near-duplicates dropped by earlier sessions."""
    resumed: int = 0
    """Conversations already on disk when this session started."""
    index: IndexPlacement | None = None
    """The passage index the session uses (a shared cache entry is held until `release_index`)."""
    cpu_at_start: float = 0.0
    """The process's CPU seconds once the run was ready to start its conversations."""

    def release_index(self) -> None:
        """Let other runs use the shared cache entry (the session's index must be closed first)."""
        if self.index is not None:
            self.index.release()


def plan_run(
    corpus: str | Path | Sequence[Document],
    out: Path | None,
    *,
    config: RunConfig,
    settings: Settings,
    models: ModelsArgument,
    embedding_function: EmbeddingFunction[Documents] | None,
) -> RunPlan:
    """Read the corpus and make the plan; nothing is written and no model is started.

    A run with workers plans from references into the streamed corpus; see `batch._streamed`."""
    max_bytes, oversize = settings.max_document_bytes, settings.oversize
    read: RunCorpus
    source: CorpusSource | None = None
    if isinstance(corpus, str | Path) and (config.distributed or needs_stream(corpus)):
        read, source = scan_for_run(
            corpus, config, references=config.distributed, max_bytes=max_bytes, oversize=oversize
        )
    else:
        read = read_corpus(corpus, max_bytes=max_bytes, oversize=oversize)
    task = get_task(settings.task)
    personas = weighted_personas(config.personas, task)
    flows = weighted_flows(config.flows, task, settings.flow)
    if not personas or not flows:
        missing = "persona" if not personas else "flow"
        raise ConfigError(f"No {missing} with a weight above 0 for task {task.name!r}: name one in the run config.")
    run_settings = settings_for_run(settings, config)
    session = Session(run_settings, models=models, embedding_function=embedding_function, task=task)
    documents = ordered_documents(read.documents, shuffle=config.shuffle_documents, seed=config.seed)
    plan = Plan(
        task=task.name,
        documents=documents,
        personas=personas,
        flows=flows,
        seed=config.seed,
        total=config.planned(len(documents)),
        fingerprint=session.fingerprint,
    )
    embedding = embedding_identity(session.embedding_function)
    return RunPlan(plan, read, session, run_inputs(plan, read, task, session, config, embedding), source)


async def prepare_run(
    make_plan: Callable[[], RunPlan],
    out: Path | None,
    *,
    config: RunConfig,
    dedup: NearDuplicates,
    models: ModelsArgument,
    resume: bool,
    force: bool,
    before_open: Callable[[RunPlan, RunLayout | None], None] | None = None,
) -> PreparedRun:
    """Lock the run directory, plan, check the directory and read back what is done, open the session, make
    the manifest. The lock comes first, so a second run on a directory stops at once; on failure nothing is
    left held or open. `before_open` runs once the directory is ready, before the session opens (a run with
    workers starts its Chroma server there)."""
    layout = RunLayout(out) if out is not None else None
    lock = None
    if layout is not None:
        check_directory(layout.root)
        lock = RunLock(layout.root)
        lock.acquire()  # before anything reads or changes the directory
    planned: RunPlan | None = None
    prepared: PreparedRun | None = None
    try:
        planned = await asyncio.to_thread(make_plan)
        prepared = PreparedRun(planned, layout, lock, manifest=None)
        previous = None
        if layout is not None:
            prepare_directory(layout.root, resume=resume, force=force)
            previous = read_run_file(layout.manifest, RunManifest)
            if previous is not None and not force:
                check_fingerprint(previous, planned.inputs, layout.root)
            _read_back(prepared, layout, dedup)
        prepared.index = await asyncio.to_thread(place_index, config.index, planned.session, layout)
        if before_open is not None:
            await asyncio.to_thread(before_open, planned, layout)
        await asyncio.to_thread(planned.session.open)
        endpoints = session_endpoints(planned.session)
        if layout is not None:
            made = make_manifest(
                previous,
                ManifestParts(
                    inputs=planned.inputs,
                    plan=planned.plan,
                    corpus=planned.corpus,
                    config=config,
                    session=planned.session,
                    instances=models,
                    requests_per_endpoint={e.key: e.snapshot().maximum for e in endpoints},
                    index=prepared.index.record(),
                ),
            )
            prepared.manifest = session_ended(made, "running", finished=prepared.tally.finished, wall_seconds=None)
        prepared.cpu_at_start = time.process_time()
        return prepared
    except BaseException:
        if planned is not None:
            planned.session.close()
        if prepared is not None:
            prepared.release_index()
        if lock is not None:
            lock.release()
        raise


def session_endpoints(session: Session) -> list[Endpoint]:
    """The endpoints of an open session's models, each once (roles may share one)."""
    context = session.context
    if context is None:
        return []
    unique = {id(model.endpoint): model.endpoint for model in context.models.values()}
    return list(unique.values())


def _read_back(prepared: PreparedRun, layout: RunLayout, dedup: NearDuplicates) -> None:
    """Repair the record files and learn which conversations are done (and count them)."""

    def visit(record: dict[str, Any]) -> None:
        ident = str(record["id"])
        if ident in prepared.done:
            return
        prepared.done.add(ident)
        prepared.tally.add_record(record)
        if "dropped" in (record.get("flags") or []):
            prepared.dropped += 1

    def visit_accepted(record: dict[str, Any]) -> None:
        visit(record)
        if record.get("accepted"):
            dedup.add(str(record["id"]), texts_of_record(record))

    scan_records(layout.accepted, visit_accepted)
    scan_records(layout.rejected, visit)
    scan_records(layout.errors, lambda record: None)
    dedup.flagged = dict.fromkeys(dedup.flagged, 0)
    prepared.resumed = len(prepared.done)
    if prepared.resumed:
        logger.info("%s: %d conversations already done; resuming", layout.root, prepared.resumed)
