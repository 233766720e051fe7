"""The passage index: passages of many documents in one Chroma collection, searched per document.

In memory for a single `simulate`, on disk when a folder is given (batch runs, usually an entry of
the shared cache, `_cache.py`), or a Chroma server when a URL is given. Passages are stored under
their document's key, its id and a hash of its text (`document_key`): several texts of one id live
side by side, and a search is restricted to the text the conversation is about. Several queries
(the user's message alone and with its context) are combined by their summed similarity.

A document counts as indexed only once its completion marker (a record in the collection's
`_documents` companion) is written, after the last of its passages: a process killed halfway
leaves no marker, and the next one indexes the document again, under the same passage ids, so
nothing is stored twice. The marker keeps the flags of the document's flagged passages, so a
document found indexed hands back the detector's verdicts without scoring again.

Vectors are computed by the embedding function's batcher (`_batcher.py`), so queries from concurrent
conversations share model calls and Chroma never embeds one text at a time. A document's passages and
vectors are kept in memory for its conversations and written to Chroma by the index writer
(`_index_writer.py`), many documents per call, on a thread of its own. The collection still records the
embedding function, so a persisted index reopens with it, and one built with another embedding model is
refused (`_index_check`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.config import Settings as ChromaSettings
from numpy.typing import NDArray

from codi_agents._ids import stable_hash
from codi_agents._security import DETECTOR_FLAG, detect_injections
from codi_agents.errors import ConfigError, RunError
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import Passage, passage_id
from codi_agents.retrieval._batcher import EmbeddingBatcher, batcher_for
from codi_agents.retrieval._document_vectors import DocumentVectors, rank
from codi_agents.retrieval._index_check import open_collection
from codi_agents.retrieval._index_counts import IndexCounts
from codi_agents.retrieval._index_writer import IndexedDocument, IndexWriter
from codi_agents.retrieval._queries import Query, query_texts, query_vectors
from codi_agents.retrieval._vector_store import VectorStore

logger = logging.getLogger("codi_agents.retrieval")

DEFAULT_COLLECTION = "codi_passages"
CANDIDATES_PER_K = 3
"""Candidates fetched per query for every passage returned, before the scores are combined."""
MARKERS_SUFFIX = "_documents"
"""The companion collection of completion markers: `<collection>_documents`."""
_NO_FLAGS: Mapping[int, list[str]] = MappingProxyType({})
"""The flags of a document none of whose passages is flagged (most): one shared, read-only mapping."""


def document_key(document: Document) -> str:
    """The key passages are stored under: the document's id and its text, hashed (the same id with another
    text is another document to the index)."""
    return stable_hash([document.id, document.fingerprint()], 24)


class PassageIndex:
    """Passages in a Chroma collection, with per-document search."""

    def __init__(
        self,
        client: ClientAPI,
        collection: Collection,
        markers: Collection,
        embedder: EmbeddingBatcher,
        *,
        ephemeral: bool = False,
    ) -> None:
        self.client = client
        self.collection = collection
        self.markers = markers
        """One record per completely indexed document: id = its key; passages and flags in the metadata."""
        self.writer = IndexWriter(collection, markers)
        """Writes added documents to Chroma in batches, behind their conversations."""
        self.embedder = embedder
        """Computes the vectors of passages and queries (batched across callers, cached)."""
        self._counts = IndexCounts()
        self.sentence_store: VectorStore | None = None
        """Passage-sentence vectors kept beside a persistent index (set by `open`, shared with the embedder)."""
        self._ephemeral = ephemeral
        self._known: dict[str, Mapping[int, list[str]]] = {}
        """Keys of the documents known complete, with the flags of their flagged passages (most have none)."""
        self._lock = threading.Lock()
        self._documents = DocumentVectors(self._stored)
        """Passages and vectors of the documents searched lately (a conversation searches one, turn after turn)."""

    @classmethod
    def open(
        cls,
        embedding_function: EmbeddingFunction[Documents],
        *,
        path: str | None = None,
        url: str | None = None,
        collection: str = DEFAULT_COLLECTION,
    ) -> PassageIndex:
        """Open (or create) the index: a Chroma server at `url`, a folder at `path`, or in memory."""
        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        ephemeral = not (path or url)
        if url:
            client = _http_client(url, settings)
        elif path:
            client = chromadb.PersistentClient(path=path, settings=settings)
        else:
            client = chromadb.EphemeralClient(settings=settings)
            collection = f"{collection}-{uuid.uuid4().hex[:12]}"
        handle = open_collection(client, collection, embedding_function, url or path or "(in memory)")
        markers = client.get_or_create_collection(f"{collection}{MARKERS_SUFFIX}", embedding_function=None)
        index = cls(client, handle, markers, batcher_for(embedding_function), ephemeral=ephemeral)
        if path and not url:  # a folder on this machine: the critic's passage sentences are kept beside it
            index.keep_sentences(path)
        return index

    def keep_sentences(self, folder: str | Path) -> None:
        """Keep the critic's passage-sentence vectors in `folder` (an index's folder on this machine), so later
        runs over this index do not embed them again."""
        self.sentence_store = self.embedder.store = VectorStore.beside(folder, self.collection.name)

    def add(self, document: Document, passages: Sequence[Passage]) -> bool:
        """Index a document's passages unless this text is indexed completely already; True when it was added.

        Either way the passages come back with their stored flags (the detector's included)."""
        key = document_key(document)
        flags = self._known.get(key)
        if flags is None:
            flags = self._completed(key, len(passages))
        if flags is not None:
            for passage in passages:
                passage.flags = list(flags.get(passage.index, []))
            with self._lock:
                self._known[key] = flags
                self._counts.note(added=False, passages=len(passages))
            return False
        flag_detected_injections(passages)
        kept = [passage.model_copy(deep=True) for passage in passages]  # the caller may change its own
        vectors = self.embedder.embed([passage.text for passage in passages], bulk=True, sentences=True)
        flagged = {passage.index: list(passage.flags) for passage in passages if passage.flags} or _NO_FLAGS
        if kept:
            self._documents.put(key, kept, vectors)  # searched from memory until the writer has stored it
        self.writer.put(IndexedDocument(key, document.id, kept, vectors, flagged))
        with self._lock:
            self._known[key] = flagged
            self._counts.note(added=True, passages=len(passages))
        return True

    def flush(self) -> None:
        """Wait until every document added is in Chroma (`_index_writer`); raise when a write failed."""
        self.writer.flush()

    def search(self, document: Document, queries: Sequence[Query], k: int) -> list[Passage]:
        """The `k` passages of `document` that best match the queries together.

        Each query's vector is made from its texts' (`retrieval._queries.query_vectors`). Each passage
        scores the sum of its cosine similarities to the queries (CombSUM), over `CANDIDATES_PER_K * k`
        candidates per query. Similarities, unlike ranks, leave passages that match no query at zero, so
        an uninformative query ("and when?") cannot reorder the others. The document's passages and vectors
        are read from Chroma once and kept (`retrieval._document_vectors`); ranking them is a matrix product.
        """
        texts = query_texts(queries)
        if not texts:
            return []
        return self.search_vectors(document, query_vectors(queries, texts, self.embedder.embed(texts)), k)

    async def asearch(self, document: Document, queries: Sequence[Query], k: int) -> list[Passage]:
        """`search`, awaited: the texts join other conversations' in one model call; a document not in memory
        is read from Chroma in a thread (one in memory is ranked here: a matrix product of a few rows)."""
        texts = query_texts(queries)
        if not texts:
            return []
        vectors = query_vectors(queries, texts, await self.embedder.aembed(texts))
        if (kept := self._documents.kept(document_key(document))) is not None:
            return rank(*kept, vectors, k, k * CANDIDATES_PER_K)
        return await asyncio.to_thread(self.search_vectors, document, vectors, k)

    def search_vectors(self, document: Document, vectors: NDArray[Any], k: int) -> list[Passage]:
        """`search` with the queries' vectors already computed (one row per query)."""
        passages, stored = self._documents.get(document_key(document))
        return rank(passages, stored, vectors, k, k * CANDIDATES_PER_K)

    def passages(self, document: Document) -> list[Passage]:
        """Every stored passage of a document (this text of it), in document order."""
        return [passage.model_copy(deep=True) for passage in self._documents.get(document_key(document))[0]]

    def _stored(self, key: str) -> tuple[list[Passage], NDArray[np.float32]]:
        """A document's passages in document order and their stored vectors, read from the collection."""
        result = self.collection.get(where={"doc_key": key}, include=["documents", "metadatas", "embeddings"])
        embeddings = result["embeddings"]
        rows = sorted(
            zip(
                (
                    _passage(text or "", metadata)
                    for text, metadata in zip(result["documents"] or [], result["metadatas"] or [], strict=True)
                ),
                [] if embeddings is None else list(embeddings),
                strict=True,
            ),
            key=lambda row: row[0].index,
        )
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [passage for passage, _ in rows], np.array([vector for _, vector in rows], dtype=np.float32)

    def is_complete(self, document: Document) -> bool:
        """True when this text of the document is indexed completely (its marker is written)."""
        return bool(self.markers.get(ids=[document_key(document)], include=[])["ids"])

    @property
    def counts(self) -> IndexCounts:
        """Documents embedded or found indexed through this object, and passage-sentence vectors kept or reused."""
        store = self.sentence_store
        with self._lock:
            counts = IndexCounts(**vars(self._counts))
        if store is not None:
            counts.sentence_vectors_kept, counts.sentence_vectors_reused = store.stored, store.restored
        return counts

    def close(self) -> None:
        """Drop an in-memory collection; persistent ones stay, and the client lets go of their files.

        Chroma shares one client per folder within a process; the last to close it stops it, so a later
        run in this process reads the folder afresh (another process may have written it meanwhile). Documents
        not written yet are written first; a failed write is logged, as the run's own results are complete."""
        try:
            self.flush()
        except RunError as error:
            logger.warning("%s", error)
        if self.sentence_store is not None:
            if self.embedder.store is self.sentence_store:
                self.embedder.store = None
            self.sentence_store.close()
        with contextlib.suppress(Exception):  # cleaning up must never mask a result
            if self._ephemeral:
                self.client.delete_collection(self.collection.name)
                self.client.delete_collection(self.markers.name)
            else:
                close = getattr(self.client, "close", None)  # Chroma >= 1.1
                if callable(close):
                    close()

    def _completed(self, key: str, passages: int) -> Mapping[int, list[str]] | None:
        """The stored flags of a completely indexed document, or None when it is not (or was cut otherwise)."""
        metadatas = self.markers.get(ids=[key], include=["metadatas"])["metadatas"] or []
        if not metadatas:
            return None
        if metadatas[0].get("passages") != passages:  # cut otherwise (a chunker changed without its version)
            self.markers.delete(ids=[key])
            self.collection.delete(where={"doc_key": key})
            return None
        stored = json.loads(str(metadatas[0].get("flags") or "{}"))
        return {int(index): [str(flag) for flag in flags] for index, flags in stored.items()} or _NO_FLAGS


def flag_detected_injections(passages: Sequence[Passage]) -> None:
    """Add `DETECTOR_FLAG` to the passages the trained detector flags, once, when indexed (stored with the
    passage, so retrieval hands it to the prompts and the critic at no cost per turn)."""
    for passage, verdict in zip(passages, detect_injections([passage.text for passage in passages]), strict=True):
        if verdict.flagged and DETECTOR_FLAG not in passage.flags:
            passage.flags.append(DETECTOR_FLAG)


def _passage(text: str, metadata: Any) -> Passage:
    metadata = metadata or {}
    flags = str(metadata.get("flags") or "")
    doc_id, index = str(metadata.get("doc_id", "")), int(metadata.get("index", 0))
    return Passage(
        id=passage_id(doc_id, index),
        doc_id=doc_id,
        index=index,
        text=text,
        flags=[flag for flag in flags.split(",") if flag],
    )


def _http_client(url: str, settings: ChromaSettings) -> ClientAPI:
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ConfigError(f"Chroma server URL {url!r} is not valid; use http://host:port.")
    return chromadb.HttpClient(
        host=parsed.hostname,
        port=parsed.port or (443 if parsed.scheme == "https" else 8000),
        ssl=parsed.scheme == "https",
        settings=settings,
    )
