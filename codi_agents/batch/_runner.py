"""The batch runner: a corpus in, a run directory of conversations out; concurrent, durable, resumable.

`BatchRun` simulates the planned conversations with K in flight (asyncio; within a conversation
turns are sequential, across conversations nothing waits on anything else; requests per endpoint
have their own bound in `calls.py`). Each finished conversation is checked for near-duplicates,
written durably, counted, and handed to whoever iterates the run. A conversation whose requests
failed after their retries is logged to `errors.jsonl` and left for a resume; an endpoint that is
down stops the run early with what the server answered; Ctrl-C abandons what is in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents._record import Conversation
from codi_agents._security import redact
from codi_agents.batch._collector import COLLECTOR
from codi_agents.batch._corpus import Corpus, read_corpus
from codi_agents.batch._dedup import NearDuplicates, texts_of_record
from codi_agents.batch._manifest import check_fingerprint, make_manifest, run_inputs
from codi_agents.batch._plan import Plan, Planned, ordered_documents, weighted_flows, weighted_personas
from codi_agents.batch._progress import NoProgress, ProgressView, Snapshot
from codi_agents.batch._summary import Tally, build_summary
from codi_agents.config._run_config import RunConfig
from codi_agents.config._settings import Settings
from codi_agents.errors import CodiError, ConfigError, LocalModelError, RunError, ServerUnavailableError
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import Passage
from codi_agents.llm._calls import Endpoint, EndpointDownError
from codi_agents.llm._models import ModelsArgument
from codi_agents.rundir._writer import (
    ACCEPTED_FILE,
    ERRORS_FILE,
    INDEX_DIR,
    MANIFEST_FILE,
    REJECTED_FILE,
    SUMMARY_FILE,
    RecordWriter,
    Stream,
    prepare_directory,
    read_json,
    scan_records,
    write_atomic,
)
from codi_agents.simulation._session import Session
from codi_agents.tasks import get_task

logger = logging.getLogger("codi_agents.batch")

REPORT_SECONDS = 0.5
MAX_LISTED_SKIPS = 200
"""Skipped files named in summary.json (all of them are counted, and each is logged)."""
_END = object()


class BatchRun:
    """One batch run. Iterate it (`async for`) for finished conversations; `summary` holds the statistics after.

    Use `async with` so that breaking out of the loop early still stops the run cleanly.
    """

    def __init__(
        self,
        corpus: str | Path | Sequence[Document],
        out: str | Path | None,
        *,
        config: RunConfig,
        settings: Settings,
        resume: bool = True,
        force: bool = False,
        models: ModelsArgument = None,
        embedding_function: EmbeddingFunction[Documents] | None = None,
        progress: ProgressView | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.corpus_spec = corpus
        self.out = Path(out) if out is not None else None
        self.config = config
        self.settings = settings
        self.resume = resume
        self.force = force
        self.models = models
        self.embedding_function = embedding_function
        self.progress = progress or NoProgress()
        self.secrets = [*settings.secrets(), *secrets]
        self.summary: dict[str, Any] | None = None
        """The run's statistics (as in summary.json), once the run has ended."""
        self.tally = Tally()
        self.errors = 0
        self.dropped = 0
        self.corpus: Corpus | None = None
        self.plan: Plan | None = None
        self._session: Session | None = None
        self._writer: RecordWriter | None = None
        self._dedup = NearDuplicates(config.dedup)
        self._done: set[str] = set()
        self._resumed = 0
        self._in_flight = 0
        self._consecutive_errors = 0
        self._fatal: BaseException | None = None
        self._passages: dict[str, asyncio.Future[list[Passage]]] = {}
        self._results: asyncio.Queue[Any] = asyncio.Queue(maxsize=config.concurrency)
        self._started = 0.0
        self._manifest: dict[str, Any] = {}
        self._inputs: dict[str, Any] = {}
        self._iterator: AsyncIterator[Conversation] | None = None
        self._pending: Iterator[Planned] = iter(())
        """The planned conversations not yet on disk, shared by the workers."""

    def __aiter__(self) -> AsyncIterator[Conversation]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    async def __aenter__(self) -> BatchRun:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    # -- the run -----------------------------------------------------------------------------------------

    async def _run(self) -> AsyncIterator[Conversation]:
        status = "failed"
        stopped_because: str | None = None
        tasks: list[asyncio.Task[None]] = []
        collector_raised = False
        try:
            collector_raised = COLLECTOR.raise_for_run(self.config.limits.gc_threshold)
            session = await self._prepare()
            self._started = time.monotonic()
            self.progress.start(self.snapshot())
            workers = [asyncio.create_task(self._worker(session)) for _ in range(self.config.concurrency)]
            tasks = [*workers, asyncio.create_task(self._report())]
            supervisor = asyncio.create_task(self._supervise(workers))
            tasks.append(supervisor)
            while (item := await self._results.get()) is not _END:
                yield item
            if self._fatal is not None:
                stopped_because = str(self._fatal)
                status = "stopped"
                self._raise_redacted(self._fatal)
            status = "completed" if not self.errors else "incomplete"
        except (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit):
            status = "interrupted"
            raise
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            try:
                if self._session is not None:
                    await self._session.close_connections()  # _finish closes the rest
            finally:
                if collector_raised:
                    COLLECTOR.run_ended()
                self._finish(status, stopped_because)

    def make_plan(self) -> Plan:
        """Read the corpus and make the plan (once); nothing is written and no model is started."""
        if self.plan is not None:
            return self.plan
        settings = self.settings
        self.corpus = read_corpus(self.corpus_spec, max_bytes=settings.max_document_bytes, oversize=settings.oversize)
        task = get_task(settings.task)
        personas = weighted_personas(self.config.personas, task)
        flows = weighted_flows(self.config.flows, task, settings.flow)
        if not personas or not flows:
            missing = "persona" if not personas else "flow"
            raise ConfigError(f"No {missing} with a weight above 0 for task {task.name!r}: name one in the run config.")
        if settings.endpoint.http_transport is None:  # one event loop, closed at the end: the faster transport
            settings = settings.model_copy(
                update={"endpoint": settings.endpoint.model_copy(update={"http_transport": "aiohttp"})}
            )
        if self.out is not None and settings.chroma_path is None and settings.chroma_url is None:
            settings = settings.model_copy(update={"chroma_path": str(self.out / INDEX_DIR)})
        if self.embedding_function is None:
            from codi_agents.retrieval._embeddings import default_embedding_function

            self.embedding_function = default_embedding_function()
        self._session = Session(settings, models=self.models, embedding_function=self.embedding_function, task=task)
        documents = ordered_documents(
            self.corpus.documents, shuffle=self.config.shuffle_documents, seed=self.config.seed
        )
        self.plan = Plan(
            task=task.name,
            documents=documents,
            personas=personas,
            flows=flows,
            seed=self.config.seed,
            total=self.config.planned(len(documents)),
            fingerprint=self._session.fingerprint,
        )
        embedding = getattr(self.embedding_function, "name", lambda: type(self.embedding_function).__name__)()
        self._inputs = run_inputs(self.plan, self.corpus, task, self._session, self.config, embedding)
        return self.plan

    async def _prepare(self) -> Session:
        """Make the plan, check the run directory against it, read back what is done, open the session."""
        plan = await asyncio.to_thread(self.make_plan)
        if self.out is not None:
            prepare_directory(self.out, resume=self.resume, force=self.force)
        session = self._session
        assert session is not None and self.corpus is not None
        previous = read_json(self.out / MANIFEST_FILE) if self.out is not None else None
        if self.out is not None:
            if previous is not None and not self.force:
                check_fingerprint(previous, self._inputs, self.out)
            self._read_back()
        self._pending = (item for item in plan if item.id not in self._done)
        await asyncio.to_thread(session.open)
        for endpoint in self._endpoints():
            endpoint.health.sustained_seconds = self.config.limits.endpoint_down_seconds
        self._manifest = make_manifest(
            previous=previous,
            inputs=self._inputs,
            plan=plan,
            corpus=self.corpus,
            config=self.config,
            session=session,
            instances=self.models,
            concurrency={
                "conversations": self.config.concurrency,
                "requests_per_endpoint": {e.key: e.limiter.maximum for e in self._endpoints()},
            },
        )
        self._write_manifest("running")
        if self.out is not None:
            self._writer = RecordWriter(self.out)
        return session

    def _read_back(self) -> None:
        """Repair the record files and learn which conversations are done (and count them)."""
        assert self.out is not None

        def visit_accepted(record: dict[str, Any]) -> None:
            self._visit(record)
            if record.get("accepted"):
                self._dedup.add(str(record["id"]), texts_of_record(record))

        scan_records(self.out / ACCEPTED_FILE, visit_accepted)
        scan_records(self.out / REJECTED_FILE, self._visit)
        scan_records(self.out / ERRORS_FILE, lambda record: None)
        self._dedup.flagged = dict.fromkeys(self._dedup.flagged, 0)
        self._resumed = len(self._done)
        if self._resumed:
            logger.info("%s: %d conversations already done; resuming", self.out, self._resumed)

    def _visit(self, record: dict[str, Any]) -> None:
        ident = str(record["id"])
        if ident in self._done:
            return
        self._done.add(ident)
        self.tally.add_record(record)
        if "dropped" in (record.get("flags") or []):
            self.dropped += 1

    # -- workers -----------------------------------------------------------------------------------------

    async def _worker(self, session: Session) -> None:
        todo = self._pending
        while self._fatal is None:
            item = next(todo, None)
            if item is None:
                return
            self._in_flight += 1
            try:
                conversation = await self._simulate(session, item)
            finally:
                self._in_flight -= 1
            if conversation is not None:
                await self._finished(conversation)

    async def _simulate(self, session: Session, item: Planned) -> Conversation | None:
        try:
            passages = await self._document_passages(session, item.document)
            conversation = await session.simulate(
                item.document, item.persona, item.flow, seed=item.seed, passages=passages
            )
        except (EndpointDownError, LocalModelError) as error:
            self._stop(error)
            return None
        except (ServerUnavailableError, RunError) as error:
            await self._failed(item, error)
            return None
        except CodiError as error:  # a user error surfacing mid-run (a bad document): this one only
            await self._failed(item, error)
            return None
        except Exception as error:
            await self._failed(item, error)
            self._consecutive_errors += 1
            if self._consecutive_errors >= self.config.limits.max_consecutive_errors:
                self._stop(
                    RunError(
                        f"{self._consecutive_errors} conversations in a row failed; the last with "
                        f"{type(error).__name__}: {error}. See {ERRORS_FILE} in the output directory."
                    )
                )
            return None
        self._consecutive_errors = 0
        if conversation.id != item.id:
            raise AssertionError(f"planned id {item.id} but the session made {conversation.id}")
        return conversation

    async def _document_passages(self, session: Session, document: Document) -> list[Passage]:
        """Chunk and index a document once, however many conversations are about it."""
        future = self._passages.get(document.id)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(session.prepare, document))
            self._passages[document.id] = future
        return await asyncio.shield(future)

    async def _finished(self, conversation: Conversation) -> None:
        if conversation.accepted:
            result = self._dedup.check(conversation)
            if result.flagged:
                conversation.flags.extend(flag for flag in result.flags if flag not in conversation.flags)
                if self._dedup.should_drop(result):
                    conversation.accepted = False
                    conversation.flags.append("dropped")
                    conversation.rejection_reason = f"near-duplicate of conversation {result.duplicate_of}; dropped"
                    self.dropped += 1
        self._done.add(conversation.id)
        self.tally.add_conversation(conversation)
        await self._append("accepted" if conversation.accepted else "rejected", conversation.model_dump_json())
        await self._results.put(conversation)

    async def _failed(self, item: Planned, error: BaseException) -> None:
        self.errors += 1
        message = redact(str(error), self.secrets)
        logger.warning("conversation %s (%s) failed: %s", item.id, item.document.id, message)
        record = {
            "id": item.id,
            "number": item.number,
            "doc_id": item.document.id,
            "persona": item.persona.name,
            "flow": item.flow.name,
            "seed": item.seed,
            "error": type(error).__name__,
            "message": message,
            "at": datetime.now(UTC).isoformat(),
        }
        await self._append("errors", json.dumps(record, ensure_ascii=False))

    async def _append(self, stream: Stream, line: str) -> None:
        if self._writer is None:
            return
        written = asyncio.wrap_future(self._writer.append(stream, redact(line, self.secrets)))
        try:
            await asyncio.shield(written)
        except OSError as error:
            self._stop(RunError(f"Cannot write to {self.out}: {error}. Free some space, then resume the run."))

    def _raise_redacted(self, error: BaseException) -> NoReturn:
        """Raise `error` to the caller; a copy without its cause when its message quotes a secret (a server
        that repeats the key it was sent), so no traceback shows the key."""
        message = redact(str(error), self.secrets)
        if message == str(error):
            raise error
        try:
            clean = type(error)(message)
        except Exception:
            clean = RunError(message)
        raise clean from None

    def _stop(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
            logger.error("stopping the run: %s", redact(str(error), self.secrets))

    async def _supervise(self, workers: list[asyncio.Task[None]]) -> None:
        try:
            while True:
                done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        self._stop(task.exception())  # type: ignore[arg-type]
                if self._fatal is not None:
                    for worker in workers:
                        worker.cancel()  # in-flight conversations are abandoned; a resume redoes them
                    await asyncio.gather(*workers, return_exceptions=True)
                    break
                workers = [task for task in workers if not task.done()]
                if not workers:
                    break
        finally:
            await self._results.put(_END)

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            self.progress.update(self.snapshot())

    # -- state and the end -------------------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        context = self._session.context if self._session is not None else None
        if context is None:
            return []
        unique = {id(model.endpoint): model.endpoint for model in context.models.values()}
        return list(unique.values())

    def _request_counts(self) -> dict[str, int]:
        counts = {"requests": 0, "retries": 0, "errors": 0, "rate_limited": 0, "input_tokens": 0, "output_tokens": 0}
        for endpoint in self._endpoints():
            for key in counts:
                counts[key] += getattr(endpoint.stats, key)
        return counts

    def snapshot(self) -> Snapshot:
        """The run's counters now."""
        counts = self._request_counts()
        return Snapshot(
            planned=len(self.plan) if self.plan is not None else 0,
            resumed=self._resumed,
            accepted=self.tally.accepted,
            rejected=self.tally.rejected,
            errors=self.errors,
            near_duplicates=sum(self._dedup.flagged.values()),
            in_flight=self._in_flight,
            requests=counts["requests"],
            retries=counts["retries"],
            rate_limited=counts["rate_limited"],
            input_tokens=counts["input_tokens"],
            output_tokens=counts["output_tokens"],
            elapsed=time.monotonic() - self._started if self._started else 0.0,
        )

    def _finish(self, status: str, stopped_because: str | None) -> None:
        """Flush the records, write the summary and the manifest, stop the progress view, close the session."""
        try:
            if self._writer is not None:
                self._writer.close()
            if self._started:  # a run that never started (refused, bad config) leaves the directory as it was
                snapshot = self.snapshot()
                self.progress.stop(snapshot)
                self.summary = self._summary(status, stopped_because, snapshot)
                if self.out is not None:
                    write_atomic(self.out / SUMMARY_FILE, self._json(self.summary))
                self._write_manifest(status)
        finally:
            if self._session is not None:
                self._session.close()

    def _summary(self, status: str, stopped_because: str | None, snapshot: Snapshot) -> dict[str, Any]:
        assert self.corpus is not None
        counts = self._request_counts()
        return build_summary(
            self.tally,
            status=status,
            planned=snapshot.planned,
            wall_seconds=snapshot.elapsed,
            earlier_wall_seconds=sum(
                float(item.get("wall_seconds") or 0) for item in self._manifest.get("sessions", [])[:-1]
            ),
            finished_now=snapshot.done_now,
            errors=self.errors,
            requests={key: counts[key] for key in ("requests", "retries", "errors", "rate_limited")},
            documents={
                "used": len(self.corpus.documents),
                "skipped_count": len(self.corpus.skipped),
                "skipped": [
                    {"source": item.source, "reason": item.reason} for item in self.corpus.skipped[:MAX_LISTED_SKIPS]
                ],
                "duplicates": len(self.corpus.duplicates),
                "truncated_count": len(self.corpus.truncated),
                "truncated": self.corpus.truncated[:MAX_LISTED_SKIPS],
                "replaced_bytes": sum(self.corpus.replaced_bytes.values()),
                "with_replaced_bytes": dict(list(self.corpus.replaced_bytes.items())[:MAX_LISTED_SKIPS]),
            },
            near_duplicates={
                "flagged": sum(self.tally.flags[flag] for flag in self._dedup.flagged),
                "by_flag": {flag: self.tally.flags[flag] for flag in self._dedup.flagged},
                "dropped": self.dropped,
                "policy": self.config.dedup.drop,
                "threshold": self.config.dedup.threshold,
            },
            prices={str(role): price for role, price in self.config.prices.items()},
            stopped_because=redact(stopped_because, self.secrets) if stopped_because else None,
        )

    def _write_manifest(self, status: str) -> None:
        if self.out is None or not self._manifest:
            return
        now = datetime.now(UTC).isoformat()
        self._manifest["status"] = status
        self._manifest["updated_at"] = now
        current = self._manifest["sessions"][-1]
        current.update(status=status, ended_at=now if status != "running" else None, finished=self.tally.finished)
        if self._started:
            current["wall_seconds"] = round(time.monotonic() - self._started, 2)
        write_atomic(self.out / MANIFEST_FILE, self._json(self._manifest))

    def _json(self, value: dict[str, Any]) -> bytes:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n"
        return redact(text, self.secrets).encode("utf-8")
