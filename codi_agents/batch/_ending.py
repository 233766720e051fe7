"""The run's state: its counters now (`run_snapshot`), its manifest and summary on disk.

The manifest is written when a session starts, both files when it ends.
Both are written atomically and redacted: a key that reached a message (a server quoting it) never
reaches the run directory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from codi_agents._security import redact
from codi_agents.batch._manifest import session_ended
from codi_agents.batch._outcome import Outcomes
from codi_agents.batch._prepare import PreparedRun, session_endpoints
from codi_agents.batch._progress import Snapshot
from codi_agents.batch._summary import Tally, build_summary, document_counts
from codi_agents.checkers._onnx import model_cpu_seconds
from codi_agents.config._run_config import RunConfig
from codi_agents.llm._limits import EndpointSnapshot
from codi_agents.retrieval._index_counts import IndexCounts
from codi_agents.rundir._files import dump_json, write_atomic
from codi_agents.rundir._layout import RunLayout
from codi_agents.rundir._models import CpuSummary, IndexSummary, RequestCounts, RunManifest, RunStatus, RunSummary


def run_snapshot(
    prepared: PreparedRun | None,
    outcomes: Outcomes | None,
    *,
    in_flight: int,
    elapsed: float,
    remote: Sequence[EndpointSnapshot] = (),
) -> Snapshot:
    """The counters of a run (all zero before it is prepared); requests come from the endpoints' snapshots,
    this process's and `remote` (the workers' endpoints, in a run with Ray workers)."""
    endpoints = [e.snapshot() for e in session_endpoints(prepared.planned.session)] if prepared else []
    endpoints += remote
    tally = outcomes.tally if outcomes is not None else Tally()
    return Snapshot(
        planned=len(prepared.planned.plan) if prepared is not None else 0,
        resumed=prepared.resumed if prepared is not None else 0,
        accepted=tally.accepted,
        rejected=tally.rejected,
        errors=outcomes.errors if outcomes is not None else 0,
        near_duplicates=sum(outcomes.dedup.flagged.values()) if outcomes is not None else 0,
        in_flight=in_flight,
        requests=sum(e.requests for e in endpoints),
        retries=sum(e.retries for e in endpoints),
        rate_limited=sum(e.rate_limited for e in endpoints),
        input_tokens=sum(e.input_tokens for e in endpoints),
        output_tokens=sum(e.output_tokens for e in endpoints),
        elapsed=elapsed,
    )


def write_manifest(layout: RunLayout, manifest: RunManifest, secrets: Sequence[str]) -> None:
    """Replace `manifest.json`."""
    _write(layout.manifest, manifest, secrets)


def finish_files(
    prepared: PreparedRun,
    outcomes: Outcomes,
    snapshot: Snapshot,
    config: RunConfig,
    *,
    status: RunStatus,
    stopped_because: str | None,
    secrets: Sequence[str],
    remote: Sequence[EndpointSnapshot] = (),
    remote_index: IndexCounts | None = None,
) -> RunSummary:
    """Build the run's summary from the tally; write it and the manifest of the ended session.

    `remote_index`: what the workers' indexing embedded (a run with Ray workers)."""
    endpoints = [endpoint.snapshot() for endpoint in session_endpoints(prepared.planned.session)]
    endpoints += remote
    earlier = prepared.manifest.sessions[:-1] if prepared.manifest is not None else []
    summary = build_summary(
        outcomes.tally,
        status=status,
        planned=snapshot.planned,
        wall_seconds=snapshot.elapsed,
        earlier_wall_seconds=sum(session.wall_seconds or 0.0 for session in earlier),
        finished_now=snapshot.done_now,
        errors=outcomes.errors,
        requests=RequestCounts(
            requests=sum(e.requests for e in endpoints),
            retries=sum(e.retries for e in endpoints),
            errors=sum(e.errors for e in endpoints),
            rate_limited=sum(e.rate_limited for e in endpoints),
        ),
        documents=document_counts(prepared.planned.corpus),
        near_duplicates=outcomes.near_duplicates(config.dedup),
        prices={str(role): price for role, price in config.prices.items()},
        stopped_because=stopped_because,
        index=_index_summary(prepared, remote_index),
        cpu=CpuSummary(
            process_seconds=round(time.process_time(), 3),
            at_start_seconds=round(prepared.cpu_at_start, 3),
            model_seconds={model: round(seconds, 3) for model, seconds in sorted(model_cpu_seconds().items())},
        ),
    )
    if prepared.layout is not None and prepared.manifest is not None:
        _write(prepared.layout.summary, summary, secrets)
        prepared.manifest = session_ended(
            prepared.manifest, status, finished=outcomes.tally.finished, wall_seconds=snapshot.elapsed
        )
        _write(prepared.layout.manifest, prepared.manifest, secrets)
    return summary


def _index_summary(prepared: PreparedRun, remote: IndexCounts | None) -> IndexSummary | None:
    """The index of the session and what it embedded: in this process, and on the workers."""
    if prepared.index is None:
        return None
    index = prepared.planned.session.index
    counts = index.counts if index is not None else IndexCounts()
    return prepared.index.summary(counts + remote if remote is not None else counts)


def _write(path: Path, model: BaseModel, secrets: Sequence[str]) -> None:
    write_atomic(path, redact(dump_json(model), list(secrets)).encode("utf-8"))
