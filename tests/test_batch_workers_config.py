"""The run keys and flags of a run with workers, without running Ray workers: a plain run never imports Ray,
`--dry-run` shows the placement, sizes are read or refused, a Parquet corpus with named columns runs in
process, and an unreachable cluster is a clear error at start that leaves the run directory unlocked.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from codi_agents import run
from codi_agents.cli import main
from codi_agents.config._run_config import load_run_config
from codi_agents.errors import ConfigError
from codi_agents.rundir._lock import RunLock
from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "doc2dial_docs.jsonl"


def test_a_run_without_workers_never_imports_ray(tmp_path: Path) -> None:
    script = f"""
import sys
from codi_agents import run
from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction
with FakeOpenAIServer(latency=0.0) as server:
    summary = run({str(CORPUS)!r}, {str(tmp_path / "run")!r}, n=2, concurrency=2,
                  embedding_function=HashingEmbeddingFunction(),
                  endpoint={{"base_url": server.base_url, "model": "codi-fake"}})
assert summary["finished"] == 2, summary
print("ray imported:", "ray" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ray imported: False" in done.stdout


def test_dry_run_shows_where_the_workers_and_the_index_would_be(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    main(["run", str(CORPUS), "--out", str(out), "--workers", "3", "--worker-cpus", "0.5", "--worker-memory",
          "1GB", "--dry-run", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"])  # fmt: skip
    printed = " ".join(capsys.readouterr().out.split())
    assert "workers: 3 × 0.5 CPU, 1.0 GiB on a local Ray cluster" in printed
    assert f"data in the shared cache, {tmp_path}/codi-cache/index/" in printed
    assert not out.exists() and not (tmp_path / "codi-cache").exists()  # a dry run writes nothing, starts nothing
    main(["run", str(CORPUS), "--out", str(out), "--workers", "3", "--index", "run", "--dry-run",
          "--base-url", "http://127.0.0.1:9/v1", "--model", "m"])  # fmt: skip
    assert f"data in the run directory, {out}/index" in " ".join(capsys.readouterr().out.split())


def test_worker_memory_is_read_as_a_size_and_a_bad_one_is_refused() -> None:
    assert load_run_config(None, worker_memory="512MB").worker_memory == 512 * 2**20
    assert load_run_config(None, worker_memory=2**30).worker_memory == 2**30
    with pytest.raises(ConfigError, match="worker_memory"):
        load_run_config(None, worker_memory="lots")
    with pytest.raises(ConfigError, match="workers"):
        load_run_config(None, workers=0)


def test_a_parquet_corpus_with_named_columns_runs_in_process(tmp_path: Path) -> None:
    records = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()][:3]
    table = pa.table(
        {
            "page": [f"page-{n}" for n in range(len(records))],
            "body": [record["text"] for record in records],
            "heading": [record.get("title", "") for record in records],
        }
    )
    pq.write_table(table, tmp_path / "part-0.parquet")
    out = tmp_path / "run"
    with FakeOpenAIServer(latency=0.0) as server:
        summary = run(
            tmp_path / "part-0.parquet", out, per_document=1, concurrency=3,
            corpus_id_column="page", corpus_text_column="body", corpus_title_column="heading",
            embedding_function=HashingEmbeddingFunction(),
            endpoint={"base_url": server.base_url, "model": "codi-fake"},
        )  # fmt: skip
    assert summary["finished"] == 3 and summary["documents"]["used"] == 3
    written = [json.loads(line) for line in (out / "accepted.jsonl").read_text().splitlines()]
    written += [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()] if (
        out / "rejected.jsonl"
    ).exists() else []
    assert sorted(record["doc_id"] for record in written) == ["page-0", "page-1", "page-2"]
    assert {record["doc_title"] for record in written} == {record.get("title", "") for record in records}


def test_an_unreachable_cluster_is_an_error_at_start_and_the_directory_stays_usable(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from codi_agents.distributed import ClusterError

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"127.0.0.1:{port}.*unreachable"):
        run(CORPUS, out, n=2, ray_address=f"127.0.0.1:{port}", chroma_url="http://127.0.0.1:9",
            embedding_function=HashingEmbeddingFunction(),
            endpoint={"base_url": "http://127.0.0.1:9/v1", "model": "m"})  # fmt: skip
    assert time.monotonic() - started < 30
    lock = RunLock(out)
    lock.acquire()  # the lock was released
    lock.release()


def test_the_chroma_server_started_beside_a_local_cluster_is_stopped_when_ray_fails_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray")
    from codi_agents.batch import _cluster_run
    from codi_agents.distributed import ClusterError
    from codi_agents.retrieval._chroma_server import ChromaServer

    launched: list[tuple[ChromaServer, subprocess.Popen[bytes]]] = []
    launch = ChromaServer.launch

    def recorded(server: ChromaServer) -> ChromaServer:
        launch(server)
        assert server.process is not None
        launched.append((server, server.process))
        return server

    def ray_fails(spec: object) -> None:
        raise ClusterError("ray did not start")

    monkeypatch.setattr(ChromaServer, "launch", recorded)
    monkeypatch.setattr(_cluster_run, "connect", ray_fails)
    with pytest.raises(ClusterError, match="ray did not start"):
        run(CORPUS, tmp_path / "run", n=2, workers=2, embedding_function=HashingEmbeddingFunction(),
            endpoint={"base_url": "http://127.0.0.1:9/v1", "model": "m"})  # fmt: skip
    [(server, process)] = launched  # launched before Ray was asked to start, so that both start at once
    assert server.process is None and process.poll() is not None  # stopped, not orphaned
