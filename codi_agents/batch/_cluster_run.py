"""The driver side of a run with Ray workers (`codi run --workers N` / `--ray-address`).

The driver keeps everything the in-process runner keeps: the plan, the lock, the run directory's one
durable writer, deduplication, progress and the summary (`BatchRun` calls this module in place of its
asyncio workers). What moves to the workers is the simulation: each Ray actor holds a Session
(`batch._remote`).

- **Index**: one Chroma server for all workers: the one named by `chroma_url`, or, on a local cluster,
  a `ChromaServer` started here over the folder the run chose (`_index_choice`: the shared cache entry,
  which this process holds, by default), stopped at the end, never orphaned. Workers index the
  corpus in slices first (each document sent once; in parallel, since embedding is the costly part;
  documents indexed already are only counted), then simulate. Workers on a local cluster keep the critic's
  passage-sentence vectors in that folder too, so a later run over the corpus embeds none of them again.
- **Requests in flight**: the driver keeps each remote endpoint's limit for the whole cluster and
  shares it out among the workers (`batch._shares`): the shares never add up to more than the
  endpoint's `max_concurrency`, a 429 on any worker lowers them all, a quiet period raises them again.
  The `[embedding]` server's limit is divided among the workers once (each worker builds its embedding
  function from the settings) and each worker's limiter adapts its own share.
- **Faults**: a worker that dies has its chunks sent to the others, and so does one that hangs (no
  chunk back within `limits.chunk_timeout_seconds`; it is killed) (`WorkerPool`); only finished
  chunks return, so each conversation is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from codi_agents._record import Conversation
from codi_agents.batch._outcome import Outcomes
from codi_agents.batch._plan import Planned
from codi_agents.batch._prepare import PreparedRun, RunPlan
from codi_agents.batch._remote import INDEX, SIMULATE, WorkerSpec, build_worker, exchange_limits, process_chunk
from codi_agents.batch._shares import SharedLimits
from codi_agents.config._embedding import resolve_embedding
from codi_agents.config._run_config import RunConfig
from codi_agents.config._settings import Settings
from codi_agents.distributed import ClusterSpec, WorkerInfo, WorkerPool, connect, shutdown
from codi_agents.distributed._cluster import import_ray
from codi_agents.errors import ConfigError, RunError
from codi_agents.llm._limits import EndpointSnapshot
from codi_agents.retrieval._index_counts import IndexCounts
from codi_agents.rundir._layout import RunLayout
from codi_agents.simulation._session import Session
from codi_agents.tasks import task_modules

logger = logging.getLogger("codi_agents.batch")

INDEX_SLICE = 16
"""Documents per indexing item."""
MAX_CHUNK = 4
"""Conversations per chunk at most: small chunks keep every worker busy and lose little when one dies."""


def cluster_spec(config: RunConfig) -> ClusterSpec:
    """Where the run's workers go, from its config (`RAY_ADDRESS` when no address is given)."""
    options: dict[str, Any] = {"workers": config.workers or 2, "worker_cpus": config.worker_cpus}
    if config.ray_address is not None:
        options["address"] = config.ray_address
    if config.worker_memory is not None:
        options["worker_memory"] = config.worker_memory
    return ClusterSpec(**options)


def placement(config: RunConfig, settings: Settings, index_data: str) -> str:
    """`--dry-run`'s account of where things would run (nothing is started); `index_data`: the index's folder."""
    spec = cluster_spec(config)
    memory = f", {spec.worker_memory / 2**30:.1f} GiB" if spec.worker_memory else ""
    where = "a local Ray cluster (127.0.0.1)" if spec.local else f"the Ray cluster at {spec.address}"
    if settings.chroma_url:
        index = f"the Chroma server at {settings.chroma_url}"
    elif spec.local:
        index = f"a Chroma server codi starts on a free port, data in {index_data}"
    else:
        index = "none: a cluster needs chroma_url (a Chroma server every node can reach)"
    return f"workers: {spec.workers} × {spec.worker_cpus:g} CPU{memory} on {where}; index: {index}"


def shared_endpoints(session: Session) -> dict[str, int]:
    """The remote endpoints all workers call, each with its `max_concurrency` (the first role's, as a
    session shares one limiter among the roles that call one endpoint)."""
    maximums: dict[str, int] = {}
    for spec in session.roles:
        if spec.source == "remote" and spec.endpoint_key:
            maximums.setdefault(spec.endpoint_key, spec.concurrency)
    return maximums


def worker_settings(session: Session, workers: int) -> Settings:
    """The run's settings with each remote role's requests in flight divided among the workers (the
    driver moves the shares while the run lasts: `batch._shares`), and the embeddings server's (each worker
    builds its embedding function from these settings)."""
    settings = session.settings
    update: dict[str, Any] = {}
    for spec in session.roles:
        if spec.source == "remote":
            share = SharedLimits.first_share(spec.concurrency, workers)
            update[spec.role] = getattr(settings, spec.role).model_copy(update={"max_concurrency": share})
    if (embedding := resolve_embedding(settings)) is not None:
        share = max(1, embedding.concurrency // workers)
        update["embedding"] = settings.embedding.model_copy(update={"max_concurrency": share})
    return settings.model_copy(update=update)


class ClusterRun:
    """The Chroma server, the worker pool, and the dispatch of a run's conversations to the workers."""

    def __init__(self, config: RunConfig, *, embedding_function: Any, models: Any) -> None:
        self.config = config
        self.cluster = cluster_spec(config)
        self.embedding_function = embedding_function
        self.models = models
        self.pool: WorkerPool | None = None
        self.chroma: Any = None
        self.in_flight: dict[str, Planned[Any]] = {}
        """Conversations sent to a worker and not yet back, by id."""
        self.limits: SharedLimits | None = None
        """Each shared endpoint's limit of requests in flight, for all workers (once started)."""
        self._usage: dict[int, dict[str, EndpointSnapshot]] = {}
        self._indexed = IndexCounts()
        """What the workers' indexing embedded, and what it found indexed already."""
        self._sentences: dict[int, tuple[int, int]] = {}
        """Each worker's passage-sentence vectors kept and found kept, as last reported."""
        self._owns_cluster = False

    def before_open(self, planned: RunPlan, layout: RunLayout | None) -> None:
        """Start or join the cluster (an unreachable one fails here, within a timeout), then point the run's
        session at the shared Chroma server (for a local cluster, started here while Ray starts)."""
        ray = import_ray()
        self._owns_cluster = self.cluster.local and not ray.is_initialized()
        session = planned.session
        if not session.settings.chroma_url:
            if layout is None:
                raise ConfigError("A run with workers needs a run directory (--out): the index lives there.")
            if not self.cluster.local:
                raise ConfigError(
                    "Workers on a Ray cluster need a Chroma server every node can reach: start one "
                    "(`chroma run --host 0.0.0.0 --path DIR`) and set chroma_url in the config file."
                )
            from codi_agents.retrieval._chroma_server import ChromaServer

            self.chroma = ChromaServer(session.settings.chroma_path or layout.index).launch()
        try:
            connect(self.cluster)
            if self.chroma is not None:
                url = self.chroma.wait_until_ready().url
                session.settings = session.settings.model_copy(update={"chroma_url": url, "chroma_path": None})
        except BaseException:
            if self.chroma is not None:
                self.chroma.stop()
                self.chroma = None
            raise

    def start(self, prepared: PreparedRun) -> None:
        """Start or join the cluster, place the workers (each checks it can import the task), build their Sessions."""
        planned = prepared.planned
        session = planned.session
        self.limits = SharedLimits(shared_endpoints(session), self.cluster.workers)
        spec = WorkerSpec(
            settings=worker_settings(session, self.cluster.workers),
            task=session.task.name,
            embedding_function=self.embedding_function,
            calibration=session.calibration,
            models=self.models,
            source=planned.source,
            local_server_url=session.server.base_url if session.server is not None else None,
            index_collection=session.index_collection,
            sentence_folder=str(self.chroma.path) if self.chroma is not None else None,
        )
        per_worker = math.ceil(self.config.concurrency / self.cluster.workers)
        chunk = max(1, min(MAX_CHUNK, per_worker // 4))
        self.pool = WorkerPool(
            self.cluster,
            build=build_worker,
            spec=spec,
            process=process_chunk,
            modules=task_modules(session.task),
            chunk_size=chunk,
            chunks_in_flight=max(1, math.ceil(per_worker / chunk)),
            chunk_timeout=self.config.limits.chunk_timeout_seconds,
            exchange=exchange_limits,
            coordinator=self.limits,
            log=logger,
        )
        infos = self.pool.start()
        self.limits.name_workers([f"worker {info.pid} on {info.host}" for info in infos])
        hosts = sorted({info.host for info in infos})
        logger.info("%d workers on %s (process ids %s)", len(infos), ", ".join(hosts), [i.pid for i in infos])

    async def index(self, planned: RunPlan) -> None:
        """Index every planned document once, in slices spread over the workers."""
        plan = planned.plan
        documents = plan.documents[: min(len(plan), len(plan.documents))]
        slices = [
            (f"index:{start}", (INDEX, list(documents[start : start + INDEX_SLICE])))
            for start in range(0, len(documents), INDEX_SLICE)
        ]
        pool = self._pool()
        results = iter(pool.run(slices))
        while (result := await asyncio.to_thread(next, results, None)) is not None:
            self._indexed += result[1][1]
        counts = self._indexed
        logger.info(
            "indexed %d documents, %d passages (%d documents were indexed already)",
            counts.documents_embedded, counts.passages_embedded, counts.documents_reused,
        )  # fmt: skip

    async def simulate(
        self,
        pending: Iterator[Planned[Any]],
        outcomes: Outcomes,
        deliver: Callable[[Conversation], Awaitable[None]],
        stop: Callable[[BaseException], None],
        unexpected: Callable[[BaseException | None], None],
        stopped: Callable[[], bool],
    ) -> None:
        """Send the pending conversations to the workers, write each result once through `outcomes`.

        `unexpected` counts unexpected errors in a row (None: a success); `stopped` says the run is stopping."""

        def items() -> Iterator[tuple[str, Any]]:
            for item in pending:
                if stopped():
                    return
                self.in_flight[item.id] = item
                yield item.id, (SIMULATE, item)

        results = self._pool().run(items())
        try:
            while (result := await asyncio.to_thread(next, results, None)) is not None:
                item_id, (kind, value, usage) = result
                item = self.in_flight.pop(item_id)
                self._note_usage(*usage)
                if kind == "ok":
                    unexpected(None)
                    await outcomes.finished(value)
                    await deliver(value)
                    continue
                name, message = value
                error = RunError(f"{name}: {message}")
                if kind == "stop":
                    stop(error)
                    return
                await outcomes.failed(item, RunError(message), name=name)
                if kind == "error":
                    unexpected(error)
        finally:
            with contextlib.suppress(ValueError):  # still running in a thread when the run was cancelled
                results.close()

    @property
    def workers(self) -> list[WorkerInfo]:
        """The live workers: process id, host, node address."""
        return [slot.info for slot in self.pool.slots if slot.alive] if self.pool is not None else []

    def remote_snapshots(self) -> list[EndpointSnapshot]:
        """The workers' endpoint counters, as last reported (a dead worker's last report stays)."""
        return [snapshot for per_worker in self._usage.values() for snapshot in per_worker.values()]

    @property
    def index_counts(self) -> IndexCounts:
        """What the workers' indexing embedded or found indexed, and the sentence vectors they kept or reused."""
        counts = IndexCounts(**vars(self._indexed))
        counts.sentence_vectors_kept = sum(kept for kept, _ in self._sentences.values())
        counts.sentence_vectors_reused = sum(reused for _, reused in self._sentences.values())
        return counts

    def _note_usage(self, pid: int, snapshots: list[EndpointSnapshot], sentences: tuple[int, int]) -> None:
        # chunks of one worker may come back out of order: keep the report with the most requests
        kept, reused = self._sentences.get(pid, (0, 0))
        self._sentences[pid] = (max(kept, sentences[0]), max(reused, sentences[1]))
        known = self._usage.setdefault(pid, {})
        for snapshot in snapshots:
            previous = known.get(snapshot.key)
            if previous is None or snapshot.requests >= previous.requests:
                known[snapshot.key] = snapshot

    def close(self) -> None:
        """Stop the workers (and the local cluster), then the Chroma server codi started."""
        try:
            if self.pool is not None:
                self.pool.close()
            if self._owns_cluster:
                shutdown()
        finally:
            if self.chroma is not None:
                self.chroma.stop()
                self.chroma = None

    def _pool(self) -> WorkerPool:
        if self.pool is None:
            raise RunError("The worker pool was not started.")
        return self.pool
