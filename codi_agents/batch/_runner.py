"""The batch runner: a corpus in, a run directory of conversations out; concurrent, durable, resumable.

`BatchRun` simulates the planned conversations with K in flight: in this process (`_local`, asyncio
workers sharing one Session) or on Ray workers (`_cluster_run`, with `workers`/`ray_address`). This
module holds their supervision and the stop policy; preparing the run (`_prepare`), what becomes of
each conversation (`_outcome`, written by this process in both cases) and the statistics (`_summary`)
have their own modules. An endpoint that is down stops the run early with
what the server answered; Ctrl-C abandons what is in flight (a resume redoes it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents._record import Conversation
from codi_agents._security import redact
from codi_agents.batch._collector import COLLECTOR
from codi_agents.batch._dedup import NearDuplicates
from codi_agents.batch._ending import finish_files, run_snapshot, write_manifest
from codi_agents.batch._local import LocalSimulation
from codi_agents.batch._outcome import Outcomes, raise_without_secrets
from codi_agents.batch._plan import Plan, Planned, longest_first
from codi_agents.batch._prepare import PreparedRun, RunPlan, plan_run, prepare_run
from codi_agents.batch._progress import NoProgress, ProgressView, Snapshot
from codi_agents.batch._streamed import RunCorpus
from codi_agents.config._run_config import RunConfig
from codi_agents.config._settings import Settings
from codi_agents.errors import RunError
from codi_agents.inputs._documents import Document
from codi_agents.llm._models import ModelsArgument
from codi_agents.rundir._layout import ERRORS_FILE
from codi_agents.rundir._models import RunStatus, RunSummary
from codi_agents.simulation._session import Session

if TYPE_CHECKING:
    from codi_agents.batch._cluster_run import ClusterRun
    from codi_agents.distributed import WorkerInfo

logger = logging.getLogger("codi_agents.batch")

REPORT_SECONDS = 0.5
LOOKAHEAD_PER_WORKER = 2
"""Planned conversations looked at per worker to start the longest first (`batch._plan.longest_first`)."""
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
        self.result: RunSummary | None = None
        """The run's statistics, once the run has ended."""
        self.summary: dict[str, Any] | None = None
        """`result` as written to summary.json (what `codi_agents.run` returns)."""
        self._planned: RunPlan | None = None
        self._prepared: PreparedRun | None = None
        self._outcomes: Outcomes | None = None
        self._dedup = NearDuplicates(config.dedup)  # a bad [dedup] table fails here, before anything runs
        self._local: LocalSimulation | None = None
        self._consecutive_errors = 0
        self._fatal: BaseException | None = None
        self._results: asyncio.Queue[Any] = asyncio.Queue(maxsize=config.concurrency)
        self._started = 0.0
        self._iterator: AsyncIterator[Conversation] | None = None
        self._pending: Iterator[Planned[Any]] = iter(())
        """The planned conversations not yet on disk, shared by the workers."""
        self._cluster: ClusterRun | None = None
        if config.distributed:  # Ray workers simulate; this process plans and writes (`_cluster_run`)
            from codi_agents.batch._cluster_run import ClusterRun

            self._cluster = ClusterRun(config, embedding_function=embedding_function, models=models)

    def __aiter__(self) -> AsyncIterator[Conversation]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    async def __aenter__(self) -> BatchRun:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    @property
    def plan(self) -> Plan[Any] | None:
        """The plan, once made."""
        return self._planned.plan if self._planned is not None else None

    @property
    def session(self) -> Session | None:
        """The run's session, once the plan is made (open while the run lasts)."""
        return self._planned.session if self._planned is not None else None

    @property
    def corpus(self) -> RunCorpus | None:
        """The corpus as read, once the plan is made."""
        return self._planned.corpus if self._planned is not None else None

    @property
    def workers(self) -> list[WorkerInfo]:
        """The live Ray workers of a run with workers, once started (process id, host); empty otherwise."""
        return self._cluster.workers if self._cluster is not None else []

    def make_plan(self) -> Plan[Any]:
        """Read the corpus and make the plan (once); nothing is written and no model is started."""
        return self._plan_once().plan

    def _plan_once(self) -> RunPlan:
        if self._planned is None:
            self._planned = plan_run(
                self.corpus_spec,
                self.out,
                config=self.config,
                settings=self.settings,
                models=self.models,
                embedding_function=self.embedding_function,
            )
        return self._planned

    async def _run(self) -> AsyncIterator[Conversation]:
        status: RunStatus = "failed"
        stopped_because: str | None = None
        tasks: list[asyncio.Task[None]] = []
        collector_raised = False
        try:
            collector_raised = COLLECTOR.raise_for_run(self.config.limits.gc_threshold)
            session = await self._prepare()
            self._started = time.monotonic()
            self.progress.start(self.snapshot())
            if self._cluster is not None:
                workers = [asyncio.create_task(self._remote(self._cluster))]
            else:
                assert self._outcomes is not None
                self._local = LocalSimulation(
                    session, self._outcomes, self._pending, deliver=self._results.put, stop=self._stop,
                    unexpected=self._count_unexpected, stopped=lambda: self._fatal is not None,
                )  # fmt: skip
                workers = [asyncio.create_task(self._local.worker()) for _ in range(self.config.concurrency)]
            tasks = [*workers, asyncio.create_task(self._report())]
            tasks.append(asyncio.create_task(self._supervise(workers)))
            while (item := await self._results.get()) is not _END:
                yield item
            if self._fatal is not None:
                stopped_because = str(self._fatal)
                status = "stopped"
                raise_without_secrets(self._fatal, self.secrets)
            assert self._outcomes is not None
            status = "completed" if not self._outcomes.errors else "incomplete"
        except (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit):
            status = "interrupted"
            raise
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            try:
                if self._prepared is not None:
                    await self._prepared.planned.session.close_connections()  # _finish closes the rest
            finally:
                if collector_raised:
                    COLLECTOR.run_ended()
                self._finish(status, stopped_because)

    async def _prepare(self) -> Session:
        """Plan, lock and read back the run directory, open the session, write the manifest, start the writer."""
        cluster = self._cluster
        prepared = await prepare_run(
            self._plan_once, self.out, config=self.config, dedup=self._dedup, models=self.models,
            resume=self.resume, force=self.force, before_open=cluster.before_open if cluster else None,
        )  # fmt: skip
        self._prepared = prepared
        if cluster is not None:
            await asyncio.to_thread(cluster.start, prepared)
        remaining = (item for item in prepared.planned.plan if item.id not in prepared.done)
        self._pending = longest_first(remaining, LOOKAHEAD_PER_WORKER * self.config.concurrency)
        if prepared.layout is not None and prepared.manifest is not None:
            write_manifest(prepared.layout, prepared.manifest, self.secrets)
        self._outcomes = Outcomes.of_run(prepared, self._dedup, secrets=self.secrets, stop=self._stop)
        return prepared.planned.session

    async def _remote(self, cluster: ClusterRun) -> None:
        """The conversations done by Ray workers: index the corpus, then send the pending ones out."""
        assert self._outcomes is not None and self._prepared is not None
        await cluster.index(self._prepared.planned)
        await cluster.simulate(
            self._pending, self._outcomes, self._results.put, self._stop, self._count_unexpected,
            lambda: self._fatal is not None,
        )  # fmt: skip

    def _count_unexpected(self, error: BaseException | None) -> None:
        """Count unexpected errors in a row (None: a conversation finished); too many stop the run."""
        self._consecutive_errors = 0 if error is None else self._consecutive_errors + 1
        if error is not None and self._consecutive_errors >= self.config.limits.max_consecutive_errors:
            self._stop(
                RunError(
                    f"{self._consecutive_errors} conversations in a row failed; the last with "
                    f"{type(error).__name__}: {error}. See {ERRORS_FILE} in the output directory."
                )
            )

    def _stop(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
            logger.error("stopping the run: %s", redact(str(error), self.secrets))

    async def _supervise(self, workers: list[asyncio.Task[None]]) -> None:
        try:
            while True:
                done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled() and (error := task.exception()) is not None:
                        self._stop(error)
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

    def snapshot(self) -> Snapshot:
        """The run's counters now."""
        elapsed = time.monotonic() - self._started if self._started else 0.0
        cluster = self._cluster
        in_flight = len(cluster.in_flight) if cluster is not None else self._local.in_flight if self._local else 0
        remote = cluster.remote_snapshots() if cluster is not None else []
        return run_snapshot(self._prepared, self._outcomes, in_flight=in_flight, elapsed=elapsed, remote=remote)

    def _finish(self, status: RunStatus, stopped_because: str | None) -> None:
        """Flush the records, write the summary and the manifest, stop the progress view, release the directory."""
        prepared = self._prepared
        try:
            if self._outcomes is not None:
                self._outcomes.close()
            if self._started and prepared is not None and self._outcomes is not None:
                snapshot = self.snapshot()
                self.progress.stop(snapshot)
                self.result = finish_files(
                    prepared, self._outcomes, snapshot, self.config, status=status,
                    stopped_because=redact(stopped_because, self.secrets) if stopped_because else None,
                    secrets=self.secrets,
                    remote=self._cluster.remote_snapshots() if self._cluster is not None else (),
                    remote_index=self._cluster.index_counts if self._cluster is not None else None,
                )  # fmt: skip
                self.summary = self.result.model_dump(mode="json")
        finally:
            try:
                if prepared is not None:
                    prepared.planned.session.close()
                if self._cluster is not None:
                    self._cluster.close()  # stops the Chroma server writing into the index, before it is released
            finally:
                if prepared is not None:
                    prepared.release_index()
                if prepared is not None and prepared.lock is not None:
                    prepared.lock.release()
