"""`codi run` with Ray workers on a real local cluster, against the fake OpenAI-compatible server.

A 2-worker run writes every planned conversation once through the driver's writer (summary, manifest
and the workers' requests counted; a later run over the same index finds the critic's passage-sentence
vectors the workers kept); a worker killed with SIGKILL mid-run has its conversations done by the
other, each written exactly once, and so has a worker that hangs (killed after the chunk timeout). The
requests in flight to an endpoint stay within its max_concurrency across both workers, and a 429 on
one worker lowers the limits of both. One cluster (2 CPUs, no dashboard) serves the module: starting
Ray takes seconds on 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

ray = pytest.importorskip("ray")

from codi_agents import iter_conversations, run  # noqa: E402
from codi_agents.distributed import ClusterSpec, connect, shutdown  # noqa: E402
from codi_agents.rundir._models import RunManifest, RunSummary  # noqa: E402
from codi_agents.testing import (  # noqa: E402
    FakeOpenAIServer,
    Faults,
    HashingEmbeddingFunction,
    ScriptedChatModel,
    scripted_models,
    scripted_user,
)

CORPUS = Path(__file__).parent / "data" / "doc2dial_docs.jsonl"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the test module
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
    assert checked.index.sentence_vectors_kept > 0  # the workers kept the critic's passage sentences
    again = run(CORPUS, tmp_path / "again", n=10, concurrency=8, **options(server))  # a new run, same index
    assert again["index"]["sentence_vectors_reused"] > 0  # found kept: not embedded again
    assert again["index"]["sentence_vectors_kept"] < checked.index.sentence_vectors_kept


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


def test_requests_in_flight_stay_within_the_endpoint_limit_and_a_429_lowers_both_workers(
    cluster: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    maximum = 6
    faults = Faults(rate_limit_first=1, retry_after=0.2)  # one 429: only one worker is answered with it
    with FakeOpenAIServer(latency=0.2, faults=faults) as limited:
        endpoint = {
            "base_url": limited.base_url,
            "model": "codi-fake",
            "api_key": "sk-test",
            "max_concurrency": maximum,
        }
        batch = iter_conversations(
            CORPUS, tmp_path / "run", n=16, concurrency=16, **options(limited, endpoint=endpoint)
        )
        pids: list[int] = []

        async def drive() -> None:
            async with batch:
                async for _ in batch:
                    pids[:] = pids or [worker.pid for worker in batch.workers]

        with caplog.at_level(logging.DEBUG, logger="codi_agents.batch"):
            asyncio.run(drive())
        stats = limited.stats()
    assert batch.summary is not None and batch.summary["status"] == "completed"
    assert stats["rate_limited"] == 1 and 2 <= stats["peak_in_flight"] <= maximum  # 16 conversations wanted more
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"lowered from {maximum} to {maximum // 2} of {maximum} (shares 2, 1)" in m for m in messages), messages
    lowered = {int(match[1]) for m in messages if (match := re.match(r"worker (\d+) on \S+ lowered its requests", m))}
    assert lowered == set(pids) and len(pids) == 2  # both workers, not only the one answered 429


class HangOnce:
    """The user model's script: blocks its worker's event loop for good at the first prompt naming one document
    (a worker that is alive but never answers); on any other worker, and afterwards, a normal user."""

    def __init__(self, flag: Path, marker: str) -> None:
        self.flag, self.marker = flag, marker

    def __call__(self, messages: list[BaseMessage]) -> str:
        if self.marker in str(messages[0].content):
            try:
                os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                (self.flag.parent / "hung.pid").write_text(str(os.getpid()))
                threading.Event().wait()  # forever, holding the loop: its chunks and messages never come back
        return scripted_user(messages)


def test_a_worker_that_hangs_is_stopped_and_its_conversations_done_by_the_other(
    cluster: None,
    server: FakeOpenAIServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    left_running: Callable[[Sequence[int]], list[int]],
) -> None:
    planned = iter_conversations(CORPUS, None, n=12, **options(server)).make_plan()
    titles = {row["id"]: row["title"] for row in map(json.loads, CORPUS.read_text().splitlines())}
    marker = f'document "{titles[list(planned)[2].document.id]}"'  # the third conversation's, as its prompt names it
    models = scripted_models()
    models["user"] = ScriptedChatModel(script=HangOnce(tmp_path / "hung.flag", marker), model_name="scripted-user")
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="codi_agents.batch"):
        summary = run(CORPUS, out, n=12, concurrency=4, models=models, limits={"chunk_timeout_seconds": 15},
                      **options(server))  # fmt: skip
    hung = int((tmp_path / "hung.pid").read_text())
    assert summary["status"] == "completed" and summary["finished"] == 12
    ids = written_ids(out)
    assert len(ids) == len(set(ids)) == 12
    assert sorted(ids) == sorted(item.id for item in iter_conversations(
        CORPUS, None, n=12, models=models, **options(server)).make_plan())  # fmt: skip
    assert any(f"worker {hung} on" in r.getMessage() and "sent no chunk back within 15 s" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert not left_running([hung])  # the hung worker was killed, not left behind
