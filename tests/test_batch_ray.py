"""`codi run` with Ray workers on a real local cluster, against the fake OpenAI-compatible server.

A 2-worker run writes every planned conversation once through the driver's writer (summary, manifest
and the workers' requests counted); a worker killed with SIGKILL mid-run has its conversations done by the
other, each written exactly once. One cluster (2 CPUs, no dashboard) and one server serve the module:
starting Ray takes seconds on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from codi_agents import iter_conversations, run  # noqa: E402
from codi_agents.distributed import ClusterSpec, connect, shutdown  # noqa: E402
from codi_agents.rundir._models import RunManifest, RunSummary  # noqa: E402
from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction  # noqa: E402

CORPUS = Path(__file__).parent / "data" / "doc2dial_docs.jsonl"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(sys.path)  # the workers import this checkout of codi
    try:
        connect(ClusterSpec(workers=2))
        yield
    finally:
        shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency=0.05) as running:
        yield running


def options(server: FakeOpenAIServer, **more: Any) -> dict[str, Any]:
    return {
        "embedding_function": HashingEmbeddingFunction(),
        "endpoint": {"base_url": server.base_url, "model": "codi-fake", "api_key": "sk-test"},
        "workers": 2,
        **more,
    }


def written_ids(out: Path) -> list[str]:
    ids = []
    for name in ("accepted.jsonl", "rejected.jsonl"):
        path = out / name
        if path.exists():
            ids += [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]
    return ids


def planned_ids(server: FakeOpenAIServer, **more: Any) -> list[str]:
    return [item.id for item in iter_conversations(CORPUS, None, **options(server, **more)).make_plan()]


def test_two_workers_write_every_planned_conversation_once_through_the_driver(
    cluster: None, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    summary = run(CORPUS, out, n=10, concurrency=8, **options(server))
    ids = written_ids(out)
    assert sorted(ids) == sorted(planned_ids(server, n=10)) and len(set(ids)) == len(ids)
    checked = RunSummary.model_validate(json.loads((out / "summary.json").read_text()))
    assert checked.status == "completed" and checked.finished == 10
    assert checked.requests.requests > 0  # the workers' requests reach the summary
    assert summary["requests"]["requests"] == checked.requests.requests
    manifest = RunManifest.model_validate(json.loads((out / "manifest.json").read_text()))
    assert (manifest.config.model_extra or {})["workers"] == 2
    assert not (out / "errors.jsonl").exists() or not (out / "errors.jsonl").read_text().strip()
    assert ray.is_initialized()  # a cluster the caller started stays up
    assert checked.index is not None and checked.index.kind == "shared"  # the Chroma server wrote into the cache
    assert checked.index.documents_embedded == 5 and checked.index.passages_reused == 0
    resumed = run(CORPUS, out, n=10, concurrency=8, **options(server))  # nothing left: nothing redone
    assert resumed["finished_this_session"] == 0 and written_ids(out) == ids
    assert resumed["index"]["passages_embedded"] == 0  # the corpus is found indexed, nothing embedded again
    assert resumed["index"]["passages_reused"] == checked.index.passages_embedded > 0


def test_a_worker_killed_with_sigkill_has_its_conversations_done_by_the_other(
    cluster: None, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    import asyncio

    out = tmp_path / "run"
    batch = iter_conversations(CORPUS, out, n=24, concurrency=8, **options(server))
    killed: list[int] = []

    async def drive() -> None:
        async with batch:
            async for _ in batch:
                if not killed:
                    victim = batch.workers[0].pid
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)

    asyncio.run(drive())
    ids = written_ids(out)
    assert killed and batch.summary is not None and batch.summary["status"] == "completed"
    assert len(ids) == len(set(ids)) == 24
    assert sorted(ids) == sorted(planned_ids(server, n=24))
