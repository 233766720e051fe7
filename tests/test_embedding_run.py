"""Whole runs with `[embedding]` set, against the fake server's chat and embeddings routes.

The packaged MiniLM is replaced by a loader that records and refuses every load, so a run that
completes without a record never touched it: indexing, retrieval and the critic all went to the server.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codi_agents import run
from codi_agents.cli import main
from codi_agents.errors import EndpointDownError
from codi_agents.llm._local_server import free_port
from codi_agents.testing import FakeOpenAIServer, Faults

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "doc2dial_docs.jsonl"
KEY = "sk-embed-SECRET-5e2b8c0d4a7f9163"
CHAT_KEY = "sk-chat-SECRET-19d3f7a2c6e04b85"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency=0.005, embedding_dimensions=32) as running:
        yield running


@pytest.fixture
def minilm_loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempt to load the packaged MiniLM, refused."""
    loads: list[Any] = []

    def refuse(threads: Any) -> Any:
        loads.append(threads)
        raise AssertionError("the packaged MiniLM was loaded although [embedding] is set")

    monkeypatch.setattr("codi_agents.retrieval._embeddings._load", refuse)
    return loads


@pytest.fixture
def two_documents(tmp_path: Path) -> Path:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()[:2]]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({**row, "text": row["text"][:2500]}) + "\n" for row in rows))
    return path


def chat(server: FakeOpenAIServer) -> dict[str, Any]:
    return {"base_url": server.base_url, "model": server.model, "api_key": CHAT_KEY}


def test_codi_run_embeds_with_the_server_never_loads_minilm_and_never_writes_the_key(
    server: FakeOpenAIServer,
    two_documents: Path,
    tmp_path: Path,
    minilm_loads: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MY_EMBEDDING_KEY", KEY)
    config = tmp_path / "run.toml"
    config.write_text(
        f'n = 4\nconcurrency = 4\n[embedding]\nbase_url = "{server.base_url}"\nmodel = "bge-small"\n'
        'api_key = "${MY_EMBEDDING_KEY}"\nbatch_size = 8\n'
    )
    out = tmp_path / "run"
    main(["run", str(two_documents), "--out", str(out), "--config", str(config), "--base-url", server.base_url,
          "--model", server.model, "--api-key", CHAT_KEY])  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["finished"] == 4 and summary["errors"] == 0
    assert minilm_loads == []
    stats = server.stats()
    assert stats["embedding_requests"] > 2 and stats["embedded_texts"] > 10  # passages, queries, critic sentences
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["settings"]["embedding_model"] == {"model": "bge-small", "dimensions": None}
    assert manifest["inputs"]["embedding"] == "codi_openai_compatible:bge-small"
    assert manifest["models"]["embedding"] == f"bge-small @ {server.base_url}"
    printed = capsys.readouterr()
    for path in [path for path in tmp_path.rglob("*") if path.is_file()]:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in printed.out + printed.err


def test_a_rate_limited_embeddings_server_is_waited_out(
    server: FakeOpenAIServer, two_documents: Path, tmp_path: Path, minilm_loads: list[Any]
) -> None:
    server.set_faults(Faults(embedding_rate_limit_first=6, retry_after=0.02))
    summary = run(
        two_documents,
        tmp_path / "run",
        n=3,
        concurrency=3,
        endpoint=chat(server),
        embedding={"base_url": server.base_url, "model": "bge-small", "max_retries": 8},
    )
    assert summary["status"] == "completed" and summary["finished"] == 3 and summary["errors"] == 0
    assert server.stats()["embedding_rate_limited"] == 6 and minilm_loads == []


def test_an_embeddings_server_that_is_down_stops_the_run_before_it_starts(
    server: FakeOpenAIServer, two_documents: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.01)
    down = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EndpointDownError, match=r"embeddings server at http://127\.0\.0\.1:\d+/v1 \(model bge-small\)"):
        run(two_documents, tmp_path / "run", n=2, endpoint=chat(server),
            embedding={"base_url": down, "model": "bge-small", "api_key": KEY, "max_retries": 1})  # fmt: skip
    assert server.stats().get("requests", 0) == 0  # no conversation started


def test_a_new_embedding_model_is_a_changed_run_config(
    server: FakeOpenAIServer, two_documents: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    first = run(two_documents, out, n=2, endpoint=chat(server), embedding={"base_url": server.base_url, "model": "a"})
    assert first["status"] == "completed"
    with pytest.raises(Exception, match=r"different config; changed: .*embedding_model"):
        run(two_documents, out, n=2, endpoint=chat(server), embedding={"base_url": server.base_url, "model": "b"})


def test_ray_workers_embed_with_the_same_server(server: FakeOpenAIServer, two_documents: Path, tmp_path: Path) -> None:
    """Workers build their embedding function from the settings they are sent: the index is the server's."""
    pytest.importorskip("ray")
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from codi_agents.distributed import ClusterSpec, connect, shutdown

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(sys.path)  # the workers import this checkout of codi
    try:
        connect(ClusterSpec(workers=2))
        out = tmp_path / "run"
        summary = run(two_documents, out, n=4, concurrency=4, workers=2, endpoint=chat(server),
                      embedding={"base_url": server.base_url, "model": "bge-small", "api_key": KEY})  # fmt: skip
    finally:
        shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    assert summary["status"] == "completed" and summary["finished"] == 4 and summary["errors"] == 0
    assert server.stats()["embedded_texts"] > 10
    where = summary["index"]  # the shared cache entry the run's Chroma server wrote into
    assert where["kind"] == "shared" and where["passages_embedded"] > 0
    index = chromadb.PersistentClient(path=where["location"], settings=ChromaSettings(anonymized_telemetry=False))
    stored = index.get_collection(f"codi_passages_{where['key']}").configuration_json["embedding_function"]
    assert stored["name"] == "codi_openai_compatible" and stored["config"]["model"] == "bge-small"
    for folder in (out, Path(where["location"])):
        assert not [p for p in folder.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
