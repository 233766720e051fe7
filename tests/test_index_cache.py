"""The shared index cache: a corpus is embedded once across runs, an indexing cut off halfway is redone, two runs
at once leave the cache whole, and the run directory says which index a run used and what it embedded."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from codi_agents import Document, Settings, run
from codi_agents.corpora._eager import read_corpus
from codi_agents.errors import ConfigError
from codi_agents.inputs._passages import chunk_document
from codi_agents.retrieval._batcher import text_key
from codi_agents.retrieval._cache import (
    CacheEntry,
    claim_entry,
    claim_folder,
    collection_name,
    index_key,
    index_parts,
    vectors_identity,
)
from codi_agents.retrieval._index import PassageIndex
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "doc2dial_docs.jsonl"
ROOT = Path(__file__).resolve().parents[1]
SMALL_CHUNKS = {"chunk_size": 200, "chunk_overlap": 20}
"""Many passages per document, so that an indexing can be cut off between upsert batches."""


class CountingEmbedding(HashingEmbeddingFunction):
    """Hashing embeddings that remember every text they embedded (passages, queries, the critic's sentences)."""

    def __init__(self, dimensions: int = 256) -> None:
        super().__init__(dimensions)
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, input: list[str]) -> Any:  # type: ignore[override]
        with self._lock:
            self.texts.extend(input)
        return super().__call__(input)


def corpus_documents() -> list[Document]:
    """The corpus as a run reads it (texts cleaned)."""
    return list(read_corpus(CORPUS, max_bytes=Settings().max_document_bytes).documents)


def corpus_passages(**chunking: int) -> dict[str, list[str]]:
    """Each document's passage texts, as codi chunks them."""
    return {doc.id: [p.text for p in chunk_document(doc, **chunking)] for doc in corpus_documents()}


def records(out: Path) -> list[dict[str, Any]]:
    found = []
    for name in ("accepted.jsonl", "rejected.jsonl"):
        if (out / name).exists():
            found += [json.loads(line) for line in (out / name).read_text().splitlines()]
    return sorted(found, key=lambda record: record["id"])


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two runs of the same plan (when it was made, how long it took)."""
    return {key: value for key, value in record.items() if key not in ("created_at", "duration_seconds")}


def open_entry(location: str, embedding: HashingEmbeddingFunction) -> PassageIndex:
    """The index a run used, reopened from its recorded folder and key (after the run let it go)."""
    key = Path(location).name
    return PassageIndex.open(embedding, path=location, collection=collection_name(key))


def assert_indexed_exactly(index: PassageIndex, **chunking: int) -> None:
    """Every document of the corpus is complete in `index` with exactly its passages, each once."""
    for document in corpus_documents():
        expected = chunk_document(document, **chunking)
        stored = index.passages(document)
        assert index.is_complete(document), document.id
        assert [(p.id, p.text) for p in stored] == [(p.id, p.text) for p in expected], document.id
    total = sum(len(chunk_document(document, **chunking)) for document in corpus_documents())
    assert index.collection.count() == total


def test_a_second_run_over_an_indexed_corpus_embeds_no_passage(tmp_path: Path) -> None:
    passages = {text for texts in corpus_passages().values() for text in texts}
    first_embedding, second_embedding = CountingEmbedding(), CountingEmbedding()
    options: dict[str, Any] = {"per_document": 1, "concurrency": 1}  # one at a time: the same near-duplicate flags
    first = run(CORPUS, tmp_path / "a", models=scripted_models(), embedding_function=first_embedding, **options)
    second = run(CORPUS, tmp_path / "b", models=scripted_models(), embedding_function=second_embedding, **options)

    assert first["index"]["passages_embedded"] == len(passages) and first["index"]["passages_reused"] == 0
    assert second["index"]["passages_embedded"] == 0 and second["index"]["documents_embedded"] == 0
    assert second["index"]["passages_reused"] == len(passages) and second["index"]["documents_reused"] == 5
    assert passages <= set(first_embedding.texts)
    assert not passages & set(second_embedding.texts)  # the model never saw a passage: only queries and replies
    assert second["index"]["location"] == first["index"]["location"] and second["index"]["kind"] == "shared"
    # the critic's passage sentences too: embedded and kept by the first run, found kept by the second
    assert first["index"]["sentence_vectors_kept"] > 0 and first["index"]["sentence_vectors_reused"] == 0
    assert second["index"]["sentence_vectors_reused"] > 0 and second["index"]["sentence_vectors_kept"] == 0
    store = Path(first["index"]["location"]) / f"{collection_name(first['index']['key'])}.sentences.sqlite"
    with sqlite3.connect(store) as connection:
        kept = {key for (key,) in connection.execute("SELECT key FROM vectors")}
    assert len(kept) == first["index"]["sentence_vectors_kept"]
    assert not kept & {text_key(text) for text in second_embedding.texts}  # none embedded again
    assert [comparable(r) for r in records(tmp_path / "b")] == [comparable(r) for r in records(tmp_path / "a")]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["index"]["location"] == first["index"]["location"] and manifest["index"]["key"]

    third = run(  # another seed and persona mix over the same corpus: still nothing to embed
        CORPUS, tmp_path / "c", per_document=1, seed=3, personas={"curious_student": 1.0},
        models=scripted_models(), embedding_function=CountingEmbedding(),
    )  # fmt: skip
    assert third["index"]["passages_embedded"] == 0 and third["status"] == "completed"


def test_a_resumed_run_reuses_its_index_and_records_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run(CORPUS, out, n=2, models=scripted_models(), embedding_function=HashingEmbeddingFunction())
    resumed = run(CORPUS, out, n=5, models=scripted_models(), embedding_function=HashingEmbeddingFunction())
    assert resumed["finished"] == 5 and resumed["finished_this_session"] == 3
    assert resumed["index"]["documents_reused"] == 0  # conversations resumed on documents not started before
    assert first["index"]["documents_embedded"] + resumed["index"]["documents_embedded"] == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["sessions"]) == 2 and manifest["index"]["key"] == first["index"]["key"]


def test_changed_chunking_or_embedding_model_uses_another_entry(tmp_path: Path) -> None:
    plain = run(CORPUS, tmp_path / "a", n=1, models=scripted_models(), embedding_function=HashingEmbeddingFunction())
    chunked = run(CORPUS, tmp_path / "b", n=1, models=scripted_models(), embedding_function=HashingEmbeddingFunction(),
                  **SMALL_CHUNKS)  # fmt: skip
    other_model = run(CORPUS, tmp_path / "c", n=1, models=scripted_models(),
                      embedding_function=HashingEmbeddingFunction(dimensions=64))  # fmt: skip
    keys = {summary["index"]["key"] for summary in (plain, chunked, other_model)}
    assert len(keys) == 3 and all(summary["index"]["passages_embedded"] > 0 for summary in (chunked, other_model))


def test_the_key_follows_the_embedding_functions_fingerprint() -> None:
    class Served(HashingEmbeddingFunction):
        def __init__(self, model: str) -> None:
            super().__init__()
            self.model = model

        def fingerprint(self) -> str:
            return f"served:{self.model}"

    assert vectors_identity(Served("bge-small")) == "served:bge-small"
    assert index_key(index_parts(800, 100, Served("a"))) != index_key(index_parts(800, 100, Served("b")))
    assert vectors_identity(HashingEmbeddingFunction(64)) != vectors_identity(HashingEmbeddingFunction(128))
    from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction

    minilm = vectors_identity(MiniLMEmbeddingFunction())
    assert minilm.startswith("codi_minilm_l6_v2_int8:") and minilm == vectors_identity(MiniLMEmbeddingFunction(2))


def test_index_run_keeps_a_private_index_a_folder_moves_the_cache_and_chroma_path_is_held(tmp_path: Path) -> None:
    private = run(CORPUS, tmp_path / "a", n=1, index="run", models=scripted_models(),
                  embedding_function=HashingEmbeddingFunction())  # fmt: skip
    assert private["index"]["kind"] == "run" and private["index"]["location"] == str(tmp_path / "a" / "index")
    assert not (tmp_path / "codi-cache").exists()
    moved = run(CORPUS, tmp_path / "b", n=1, index=str(tmp_path / "elsewhere"), models=scripted_models(),
                embedding_function=HashingEmbeddingFunction())  # fmt: skip
    assert moved["index"]["location"] == str(tmp_path / "elsewhere" / moved["index"]["key"])
    info = json.loads((tmp_path / "elsewhere" / moved["index"]["key"] / "codi-index.json").read_text())
    assert info["chunking"]["chunk_size"] == 800 and info["embedding"].startswith("codi_hashing:")
    folder = tmp_path / "named"
    named = run(CORPUS, tmp_path / "n", n=1, chroma_path=str(folder), models=scripted_models(),
                embedding_function=HashingEmbeddingFunction())  # fmt: skip
    assert named["index"]["kind"] == "folder" and named["index"]["location"] == str(folder)
    held = claim_folder(folder, index_parts(800, 100, HashingEmbeddingFunction()))  # as another run holding it
    assert isinstance(held, CacheEntry)
    try:
        beside = run(CORPUS, tmp_path / "m", n=1, chroma_path=str(folder), models=scripted_models(),
                     embedding_function=HashingEmbeddingFunction())  # fmt: skip
    finally:
        held.release()
    assert beside["index"]["kind"] == "run" and "in use by another run" in beside["index"]["note"]
    with pytest.raises(ConfigError, match="chroma_path"):
        run(CORPUS, tmp_path / "c", n=1, index="run", chroma_path=str(tmp_path / "x"), models=scripted_models(),
            embedding_function=HashingEmbeddingFunction())  # fmt: skip


def test_an_indexing_that_fails_halfway_is_redone_by_the_next_run(tmp_path: Path) -> None:
    second = corpus_documents()[1].id
    crash_on = corpus_passages(**SMALL_CHUNKS)[second][0]

    class FailsLater(HashingEmbeddingFunction):
        def __call__(self, input: list[str]) -> Any:  # type: ignore[override]
            if crash_on in input:  # while indexing the second document
                raise RuntimeError("the embedding model crashed")
            return super().__call__(input)

    failed = run(CORPUS, tmp_path / "a", per_document=1, concurrency=1, models=scripted_models(),
                 embedding_function=FailsLater(), **SMALL_CHUNKS)  # fmt: skip
    assert failed["status"] == "incomplete" and failed["errors"] >= 1
    index = open_entry(failed["index"]["location"], HashingEmbeddingFunction())
    incomplete = [doc for doc in corpus_documents() if not index.is_complete(doc)]
    assert incomplete and len(incomplete) < len(corpus_documents())  # those indexed before the failure are kept
    index.close()

    again = run(CORPUS, tmp_path / "b", per_document=1, models=scripted_models(),
                embedding_function=HashingEmbeddingFunction(), **SMALL_CHUNKS)  # fmt: skip
    assert again["status"] == "completed" and again["index"]["documents_embedded"] == len(incomplete)
    assert_indexed_exactly(open_entry(again["index"]["location"], HashingEmbeddingFunction()), **SMALL_CHUNKS)


RUN_SCRIPT = """
import json, os, signal, sys
import codi_agents.retrieval._index_writer as writer_module
from codi_agents import run
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

options = json.loads(sys.argv[3])
if options.pop("kill_before_markers", False):
    def die(document):  # as `kill -9` after the index writer's passages upsert, before the markers'
        os.kill(os.getpid(), signal.SIGKILL)

    writer_module._marker = die

summary = run(sys.argv[1], sys.argv[2], models=scripted_models(), embedding_function=HashingEmbeddingFunction(),
              **options)
print(json.dumps(summary["index"]))
"""


def run_in_process(out: Path, **options: Any) -> subprocess.Popen[str]:
    """A batch run in its own process (scripted models, hashing embeddings), printing its summary's index."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", textwrap.dedent(RUN_SCRIPT), str(CORPUS), str(out), json.dumps(options)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_run_killed_halfway_through_a_document_leaves_it_to_the_next_run(tmp_path: Path) -> None:
    killed = run_in_process(tmp_path / "a", per_document=1, concurrency=1, kill_before_markers=True, **SMALL_CHUNKS)
    _, errors = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, errors[-2000:]
    entry = next((tmp_path / "codi-cache" / "index").iterdir())
    index = open_entry(str(entry), HashingEmbeddingFunction())
    assert index.collection.count() > 0  # it had written passages
    assert not any(index.is_complete(document) for document in corpus_documents())  # and no marker
    index.close()

    again = run(CORPUS, tmp_path / "b", per_document=1, models=scripted_models(),
                embedding_function=HashingEmbeddingFunction(), **SMALL_CHUNKS)  # fmt: skip
    assert again["status"] == "completed" and again["index"]["location"] == str(entry)
    assert_indexed_exactly(open_entry(str(entry), HashingEmbeddingFunction()), **SMALL_CHUNKS)


def test_a_run_that_finds_the_entry_in_use_indexes_on_its_own_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder_script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from codi_agents.retrieval._cache import claim_entry, index_parts
        from codi_agents.testing import HashingEmbeddingFunction

        entry = claim_entry(Path(sys.argv[1]), index_parts(800, 100, HashingEmbeddingFunction()))
        print(entry.path, flush=True)
        sys.stdin.read()  # hold it until the test closes stdin
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    root = tmp_path / "codi-cache" / "index"
    holder = subprocess.Popen([sys.executable, "-c", holder_script, str(root)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout is not None
        held = Path(holder.stdout.readline().strip())
        with caplog.at_level("WARNING", logger="codi_agents.batch"):
            summary = run(CORPUS, tmp_path / "a", per_document=1, models=scripted_models(),
                          embedding_function=HashingEmbeddingFunction())  # fmt: skip
    finally:
        holder.communicate("", timeout=60)
    assert summary["status"] == "completed" and summary["index"]["kind"] == "run"
    assert summary["index"]["location"] == str(tmp_path / "a" / "index")
    assert f"pid {holder.pid}" in summary["index"]["note"] and str(held) in summary["index"]["note"]
    assert any("in use by another run" in record.getMessage() for record in caplog.records)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["index"]["kind"] == "run" and manifest["index"]["note"] == summary["index"]["note"]
    entry = claim_entry(root, index_parts(800, 100, HashingEmbeddingFunction()))
    assert isinstance(entry, CacheEntry) and entry.path == held  # free again once its holder ended
    entry.release()
    assert not (held / "chroma.sqlite3").exists()  # the run wrote nothing into the entry it did not hold


def test_two_runs_at_once_on_one_corpus_leave_the_shared_index_whole(tmp_path: Path) -> None:
    runs = [run_in_process(tmp_path / name, per_document=1, **SMALL_CHUNKS) for name in ("a", "b")]
    results = [child.communicate(timeout=600) for child in runs]
    for child, (_, errors) in zip(runs, results, strict=True):
        assert child.returncode == 0, errors[-2000:]
    indexes = [json.loads(output.strip().splitlines()[-1]) for output, _ in results]
    for name, index in zip(("a", "b"), indexes, strict=True):
        if index["kind"] == "run":  # the other one held the entry: this one said so and used its own
            assert "in use by another run" in index["note"] and index["location"] == str(tmp_path / name / "index")
        else:
            assert index["kind"] == "shared" and index["note"] is None
    shared = [index for index in indexes if index["kind"] == "shared"]
    assert shared  # the first to start always gets the entry
    assert_indexed_exactly(open_entry(shared[0]["location"], HashingEmbeddingFunction()), **SMALL_CHUNKS)
    assert records(tmp_path / "a") and len(records(tmp_path / "a")) == len(records(tmp_path / "b")) == 5
