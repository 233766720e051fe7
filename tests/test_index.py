"""The passage index over Chroma: stable ids, per-document search, persistence with the registered embedding,
documents stored per text, and completion markers (a document cut off halfway is indexed again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codi_agents import Document
from codi_agents.errors import RunError
from codi_agents.inputs._passages import Passage, chunk_document
from codi_agents.retrieval import _index_writer as index_writer
from codi_agents.retrieval._document_vectors import DocumentVectors
from codi_agents.retrieval._index import PassageIndex
from codi_agents.testing import HashingEmbeddingFunction


def test_passage_ids_are_stable_and_searches_stay_in_their_document(
    document: Document, wiki_document: Document
) -> None:
    index = PassageIndex.open(HashingEmbeddingFunction())
    first = chunk_document(document)
    assert [p.id for p in first] == [p.id for p in chunk_document(document)]
    assert first[0].id == f"{document.id}::0"
    assert index.add(document, first) is True
    assert index.add(document, first) is False
    index.add(wiki_document, chunk_document(wiki_document))
    found = index.search(wiki_document, ["governor pension poetry"], 3)
    assert found and all(p.doc_id == wiki_document.id for p in found)
    assert "pension" in found[0].text
    assert [p.index for p in index.passages(document)] == list(range(len(first)))
    assert [p.id for p in index.passages(document)] == [p.id for p in first]
    index.close()


def test_persisted_collection_reopens_with_its_embedding_function(tmp_path: Path, document: Document) -> None:
    index = PassageIndex.open(HashingEmbeddingFunction(dimensions=128), path=str(tmp_path))
    index.add(document, chunk_document(document))
    index.close()  # writes what the index writer holds, lets go of the folder
    reopened = PassageIndex.open(HashingEmbeddingFunction(dimensions=128), path=str(tmp_path))
    assert reopened.add(document, chunk_document(document)) is False
    config = reopened.collection.configuration_json["embedding_function"]
    assert config["name"] == "codi_hashing" and config["config"] == {"dimensions": 128}
    assert reopened.search(document, ["change of address within ten days"], 1)[0].index == 1


def test_two_texts_of_one_document_id_are_indexed_side_by_side(tmp_path: Path) -> None:
    """An edited corpus, or two corpora numbering their documents alike: each text is searched on its own."""
    index = PassageIndex.open(HashingEmbeddingFunction(), path=str(tmp_path))
    old = Document(id="d", title="t", text="Old text about cats.")
    new = Document(id="d", title="t", text="New text about dogs.")
    index.add(old, chunk_document(old))
    assert index.add(new, chunk_document(new)) is True
    assert [p.text for p in index.passages(new)] == ["New text about dogs."]
    assert [p.text for p in index.search(old, ["dogs cats"], 3)] == ["Old text about cats."]
    assert index.add(old, chunk_document(old)) is False  # still there: going back embeds nothing
    assert index.counts.documents_embedded == 2 and index.counts.documents_reused == 1


def test_a_minilm_index_reopens_from_disk_with_no_embedding_function_given(tmp_path: Path, document: Document) -> None:
    """Chroma rebuilds the packaged MiniLM from the collection's stored config: registration works."""
    import chromadb

    from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction

    index = PassageIndex.open(MiniLMEmbeddingFunction(), path=str(tmp_path))
    index.add(document, chunk_document(document))
    index.flush()
    name, settings = index.collection.name, index.client.get_settings()
    del index
    client = chromadb.PersistentClient(path=str(tmp_path), settings=settings)
    collection = client.get_collection(name)  # no embedding_function: Chroma must build it from the config
    assert collection.configuration_json["embedding_function"]["name"] == MiniLMEmbeddingFunction.name()
    found = collection.query(query_texts=["change of address within ten days"], n_results=1)
    assert (found["metadatas"] or [[]])[0][0]["index"] == 1


def test_a_document_is_read_from_chroma_once_however_often_it_is_searched(tmp_path: Path, document: Document) -> None:
    writing = PassageIndex.open(HashingEmbeddingFunction(), path=str(tmp_path))
    writing.add(document, chunk_document(document))
    writing.close()
    index = PassageIndex.open(HashingEmbeddingFunction(), path=str(tmp_path))  # another run over the same folder
    reads: list[str] = []
    stored = index._stored

    def counted(key: str) -> Any:
        reads.append(key)
        return stored(key)

    index._documents.load = counted
    for query in ["change of address", "ten days", "suspension order"]:
        found = index.search(document, [query], 2)
        assert len(found) == 2
        found[0].flags.append("changed by the caller")  # a copy: the kept passages stay as stored
    assert len(reads) == 1
    assert all("changed by the caller" not in passage.flags for passage in index.passages(document))
    index.close()


def test_a_document_just_indexed_is_searched_before_chroma_has_it_and_written_with_others(
    document: Document, wiki_document: Document, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_writer, "LINGER_SECONDS", 60.0)  # the writer waits for more until flushed
    index = PassageIndex.open(HashingEmbeddingFunction())
    assert index.search(document, ["change of address"], 2) == []  # not indexed: nothing, and not remembered
    upserts: list[int] = []
    upsert = index.collection.upsert

    def counted(**records: Any) -> None:
        upserts.append(len(records["ids"]))
        upsert(**records)

    index.collection.upsert = counted  # type: ignore[method-assign]
    sizes = [len(chunk_document(document)), len(chunk_document(wiki_document))]
    index.add(document, chunk_document(document))
    index.add(wiki_document, chunk_document(wiki_document))
    index._known.clear()  # as when two conversations start on one document at once: both index it
    index.add(document, chunk_document(document))
    assert [p.index for p in index.search(document, ["change of address within ten days"], 1)] == [1]
    assert index.collection.count() == 0 and not index.is_complete(document)  # searched from memory
    index.flush()
    assert upserts == [sum(sizes)]  # both documents' passages in one call, each once
    assert index.collection.count() == sum(sizes) and index.is_complete(document) and index.is_complete(wiki_document)
    index.close()


def test_a_failed_write_is_raised_and_leaves_the_document_not_indexed(tmp_path: Path, document: Document) -> None:
    index = PassageIndex.open(HashingEmbeddingFunction(), path=str(tmp_path))

    def full_disk(**records: Any) -> None:
        raise OSError(28, "No space left on device")

    index.markers.upsert = full_disk  # type: ignore[method-assign]
    index.add(document, chunk_document(document))
    with pytest.raises(RunError, match=r"Writing the passage index failed.*No space left"):
        index.flush()
    with pytest.raises(RunError, match="indexes them again"):
        index.add(document.model_copy(update={"text": document.text + " More."}), chunk_document(document))
    assert index.collection.count() > 0 and not index.is_complete(document)  # passages written, no marker
    index.close()  # logs the failure, still lets go of the folder
    again = PassageIndex.open(HashingEmbeddingFunction(), path=str(tmp_path))
    assert again.add(document, chunk_document(document)) is True  # indexed again: not counted as done
    again.close()


def test_the_documents_kept_in_memory_are_bounded() -> None:
    loads: list[str] = []

    def load(key: str) -> tuple[list[Passage], Any]:
        loads.append(key)
        return [Passage(id=f"{key}::0", doc_id=key, index=0, text=key)], np.ones((1, 4), dtype=np.float32)

    kept = DocumentVectors(load, capacity=2)
    for key in ["a", "b", "a", "c", "a", "b"]:
        kept.get(key)
    assert loads == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came
