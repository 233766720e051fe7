"""The embedding batcher: concurrent requests share model calls, each caller gets its own vectors, errors reach all."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codi_agents import Document
from codi_agents.inputs._passages import chunk_document
from codi_agents.retrieval._batcher import EmbeddingBatcher, EmbeddingError, batcher_for
from codi_agents.retrieval._index import PassageIndex, document_key
from codi_agents.testing import HashingEmbeddingFunction


class CountingModel:
    """The hashing embedding function, counting its calls and the texts of each; optionally slow or broken."""

    def __init__(self, delay: float = 0.0, error: Exception | None = None) -> None:
        self.inner = HashingEmbeddingFunction()
        self.calls: list[list[str]] = []
        self.delay = delay
        self.error = error

    def __call__(self, texts: list[str]) -> Any:
        self.calls.append(list(texts))
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.inner(texts)


def test_concurrent_requests_share_one_model_call_and_each_gets_its_own_vectors() -> None:
    model = CountingModel()
    batcher = EmbeddingBatcher(model, window_seconds=0.05)
    requests = [[f"question {i} about apples", f"question {i} about pears"] for i in range(10)]

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.aembed(texts) for texts in requests))

    results = asyncio.run(main())
    assert len(model.calls) == 1 and len(model.calls[0]) == 20
    for texts, vectors in zip(requests, results, strict=True):
        assert np.allclose(vectors, np.asarray(model.inner(texts)))


def test_a_request_larger_than_the_batch_is_cut_into_parts_in_order() -> None:
    model = CountingModel()
    batcher = EmbeddingBatcher(model, max_batch=4, window_seconds=0.0)
    texts = [f"passage number {i} on topic {i * 7}" for i in range(10)]
    vectors = batcher.embed(texts, bulk=True)
    assert [len(call) for call in model.calls] == [4, 4, 2]
    assert np.allclose(vectors, np.asarray(model.inner(texts)))


def test_repeated_texts_are_embedded_once() -> None:
    model = CountingModel()
    batcher = EmbeddingBatcher(model, window_seconds=0.0)
    first = batcher.embed(["the fee is ten dollars", "offices open at eight"])
    again = batcher.embed(["offices open at eight", "the fee is ten dollars", "a new sentence here"])
    assert [sorted(call) for call in model.calls] == [
        ["offices open at eight", "the fee is ten dollars"],
        ["a new sentence here"],
    ]
    assert np.allclose(again[0], first[1]) and np.allclose(again[1], first[0])
    assert batcher.hits == 2 and batcher.embedded == 3
    batcher.embed(["the fee is ten dollars"])  # all cached: answered without the model
    assert len(model.calls) == 2


def test_the_cache_is_bounded() -> None:
    batcher = EmbeddingBatcher(CountingModel(), cache_size=2, window_seconds=0.0)
    batcher.embed(["one apple", "two pears", "three plums"])
    assert len(batcher._cache) == 2


def test_a_model_error_reaches_every_waiting_caller_with_a_clear_message() -> None:
    model = CountingModel(error=RuntimeError("onnx session crashed"))
    batcher = EmbeddingBatcher(model, window_seconds=0.05)

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.aembed([f"text {i}"]) for i in range(5)), return_exceptions=True)

    errors = asyncio.run(main())
    assert len(model.calls) == 1
    assert all(isinstance(error, EmbeddingError) for error in errors)
    assert "The embedding model failed on a batch of 5 texts" in str(errors[0])
    assert "onnx session crashed" in str(errors[0])
    model.error = None
    assert batcher.embed(["text 1"]).shape == (1, 256)  # the batcher keeps serving after a failure


def test_a_model_returning_the_wrong_number_of_vectors_is_an_error() -> None:
    batcher = EmbeddingBatcher(lambda texts: np.zeros((1, 8)), window_seconds=0.0)
    with pytest.raises(EmbeddingError, match=r"shape \(1, 8\) for 2 texts"):
        batcher.embed(["a b", "c d"])


def test_the_event_loop_keeps_running_while_the_model_works() -> None:
    model = CountingModel(delay=0.3)
    batcher = EmbeddingBatcher(model, window_seconds=0.0)

    async def main() -> int:
        ticks = 0
        task = asyncio.ensure_future(batcher.aembed(["a slow text to embed"]))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.01)
        await task
        return ticks

    assert asyncio.run(main()) >= 10


def test_the_sync_api_works_from_many_threads_and_from_several_event_loops() -> None:
    model = CountingModel()
    batcher = EmbeddingBatcher(model, window_seconds=0.02)
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = batcher.embed([f"thread {i} text"])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.allclose(results[i], np.asarray(model.inner([f"thread {i} text"]))) for i in range(6))
    assert len(model.calls) < 6
    for _ in range(2):
        assert asyncio.run(batcher.aembed(["one more loop"])).shape == (1, 256)


def test_one_batcher_per_embedding_function() -> None:
    embed = HashingEmbeddingFunction()
    assert batcher_for(embed) is batcher_for(embed)
    assert batcher_for(HashingEmbeddingFunction()) is not batcher_for(embed)


def _chroma_search(index: PassageIndex, document: Document, queries: list[str], k: int) -> list[str]:
    """Today's path before the batcher: Chroma embeds the query texts itself."""
    result = index.collection.query(
        query_texts=queries,
        n_results=k * 3,
        where={"doc_key": document_key(document)},
        include=["distances", "metadatas"],
    )
    scores: dict[str, float] = {}
    order: dict[str, int] = {}
    for ids, metadatas, distances in zip(
        result["ids"], result["metadatas"] or [], result["distances"] or [], strict=True
    ):
        for _, metadata, distance in zip(ids, metadatas, distances, strict=True):
            pid = f"{metadata['doc_id']}::{metadata['index']}"
            scores[pid] = scores.get(pid, 0.0) + max(0.0, 1.0 - float(distance))
            order[pid] = int(metadata["index"])
    return sorted(scores, key=lambda pid: (-round(scores[pid], 9), order[pid]))[:k]


@pytest.mark.parametrize("model", ["hashing", "minilm"])
def test_retrieval_finds_the_same_passages_as_chroma_embedding_itself(
    model: str, document: Document, wiki_document: Document, tmp_path: Path
) -> None:
    from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction

    embedding = HashingEmbeddingFunction() if model == "hashing" else MiniLMEmbeddingFunction()
    index = PassageIndex.open(embedding, path=str(tmp_path))
    for item in (document, wiki_document):
        index.add(item, chunk_document(item, chunk_size=200, chunk_overlap=0))
    index.flush()  # Chroma's own search below needs the passages written
    questions = [
        (document, ["How long do I have to report a change of address?"]),
        (document, ["Can I do it online?", "How long do I have to report a change of address? Can I do it online?"]),
        (wiki_document, ["Why did he decline the pension?"]),
        (wiki_document, ["What did the governor do?", "Why did he decline the pension? What did the governor do?"]),
    ]

    async def batched() -> list[list[str]]:
        found = await asyncio.gather(*(index.asearch(doc, queries, 3) for doc, queries in questions))
        return [[passage.id for passage in passages] for passages in found]

    expected = [_chroma_search(index, doc, queries, 3) for doc, queries in questions]
    assert asyncio.run(batched()) == expected
    assert [[p.id for p in index.search(doc, queries, 3)] for doc, queries in questions] == expected


def test_minilm_vectors_do_not_depend_on_the_batch_a_text_is_in() -> None:
    """A text's vector depends on the text alone (activations are quantised per call), in order, whatever its batch."""
    from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction

    embed = MiniLMEmbeddingFunction()
    texts = ["Short.", "A somewhat longer sentence about renewing a licence online.", "Mid length text here.", ""]
    texts += [f"Passage {i}: " + "the office opens at eight and closes at five " * (i % 7 + 1) for i in range(20)]
    together = np.asarray(embed(texts))
    alone = np.stack([np.asarray(embed([text]))[0] for text in texts])
    assert together.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)
    assert np.allclose(together, alone, atol=1e-6)


def test_a_failure_after_the_model_call_still_reaches_the_caller() -> None:
    """Vectors of another size than the cached ones cannot be stacked: the caller gets an error, not a hang."""
    sizes = iter([8, 4])
    batcher = EmbeddingBatcher(lambda texts: np.ones((len(texts), next(sizes))), window_seconds=0.0)
    batcher.embed(["cached text"])
    with pytest.raises(EmbeddingError, match="failed unexpectedly"):
        batcher.submit(["cached text", "new text"]).result(timeout=10)
    assert batcher.embed(["cached text"]).shape == (1, 8)


def test_kept_texts_are_found_in_the_store_and_others_are_not_written(tmp_path: Path) -> None:
    from codi_agents.retrieval._vector_store import VectorStore

    model = CountingModel()
    first = EmbeddingBatcher(model)
    first.store = VectorStore(tmp_path / "kept.sqlite")
    sentences = ["The office opens at eight.", "It closes at five."]
    kept_vectors = first.embed(sentences, keep=True)
    first.embed(["a question asked once"])  # not kept
    assert first.store.stored == 2
    first.store.close()

    later = CountingModel()
    second = EmbeddingBatcher(later)  # another run: an empty in-memory cache, the same file
    second.store = VectorStore(tmp_path / "kept.sqlite")
    again = second.embed([*sentences, "It closes at five.", "A new sentence."], keep=True)
    assert later.calls == [["A new sentence."]]  # only the text the file did not have
    assert np.array_equal(again[:2], kept_vectors) and np.array_equal(again[2], kept_vectors[1])
    assert second.store.restored == 2 and second.store.stored == 1
    third = CountingModel()
    plain = EmbeddingBatcher(third)
    plain.store = VectorStore(tmp_path / "kept.sqlite")
    plain.embed(["a question asked once"], keep=True)
    assert third.calls == [["a question asked once"]]  # never kept, so embedded again


def test_a_damaged_store_is_logged_once_and_the_texts_are_embedded_anyway(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from codi_agents.retrieval._vector_store import VectorStore

    damaged = tmp_path / "kept.sqlite"
    damaged.write_bytes(b"this is not a database" * 100)
    model = CountingModel()
    batcher = EmbeddingBatcher(model)
    batcher.store = VectorStore(damaged)
    with caplog.at_level("WARNING", logger="codi_agents.retrieval"):
        vectors = batcher.embed(["One sentence.", "Another one."], keep=True)
        batcher.embed(["A third."], keep=True)
    assert vectors.shape[0] == 2 and len(model.calls) == 2
    warnings = [record.getMessage() for record in caplog.records if "kept sentence vectors" in record.getMessage()]
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "Delete the file" in warnings[0]
