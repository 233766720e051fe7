"""The passage index: passages of many documents in one Chroma collection, searched per document.

In memory for a single `simulate`, on disk when a folder is given (batch runs), or a Chroma server
when a URL is given. A document is indexed once per text fingerprint; queries are restricted to
the document the conversation is about, and several queries (the user's message alone and with
its context) are combined by their summed similarity.

Vectors are computed by the embedding function's batcher (`_batcher.py`) and handed to Chroma, so
queries from concurrent conversations share model calls and Chroma never embeds one text at a
time. The collection still records the embedding function, so a persisted index reopens with it,
and one built with another embedding model is refused (`_index_check`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.config import Settings as ChromaSettings
from numpy.typing import NDArray

from codi_agents._security import DETECTOR_FLAG, detect_injections
from codi_agents.errors import ConfigError
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import Passage
from codi_agents.retrieval._batcher import EmbeddingBatcher, batcher_for
from codi_agents.retrieval._index_check import open_collection

DEFAULT_COLLECTION = "codi_passages"
CANDIDATES_PER_K = 3
"""Candidates fetched per query for every passage returned, before the scores are combined."""
UPSERT_BATCH = 256


class PassageIndex:
    """Passages in a Chroma collection, with per-document search."""

    def __init__(
        self,
        client: ClientAPI,
        collection: Collection,
        embedder: EmbeddingBatcher,
        *,
        ephemeral: bool = False,
    ) -> None:
        self.client = client
        self.collection = collection
        self.embedder = embedder
        """Computes the vectors of passages and queries (batched across callers, cached)."""
        self._ephemeral = ephemeral
        self._indexed: dict[str, str] = {}

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
        return cls(client, handle, batcher_for(embedding_function), ephemeral=ephemeral)

    def add(self, document: Document, passages: Sequence[Passage]) -> bool:
        """Index a document's passages unless this text is indexed already; True when it was added."""
        fingerprint = document.fingerprint()
        if self._indexed.get(document.id) == fingerprint or self._stored_fingerprint(document.id) == fingerprint:
            self._indexed[document.id] = fingerprint
            return False
        self.collection.delete(where={"doc_id": document.id})
        flag_detected_injections(passages)
        for start in range(0, len(passages), UPSERT_BATCH):
            batch = passages[start : start + UPSERT_BATCH]
            texts = [passage.text for passage in batch]
            self.collection.upsert(
                ids=[passage.id for passage in batch],
                embeddings=self.embedder.embed(texts, bulk=True),
                documents=texts,
                metadatas=[_metadata(passage, fingerprint) for passage in batch],
            )
        self._indexed[document.id] = fingerprint
        return True

    def search(self, doc_id: str, queries: Sequence[str], k: int) -> list[Passage]:
        """The `k` passages of `doc_id` that best match the queries together.

        Each passage scores the sum of its cosine similarities to the queries (CombSUM), over
        `CANDIDATES_PER_K * k` candidates per query. Similarities, unlike ranks, leave passages that
        match no query at zero, so an uninformative query ("and when?") cannot reorder the others.
        """
        queries = [query for query in queries if query.strip()]
        if not queries:
            return []
        return self.search_vectors(doc_id, self.embedder.embed(queries), k)

    async def asearch(self, doc_id: str, queries: Sequence[str], k: int) -> list[Passage]:
        """`search`, awaited: the queries join other conversations' in one model call, Chroma runs in a thread."""
        queries = [query for query in queries if query.strip()]
        if not queries:
            return []
        vectors = await self.embedder.aembed(queries)
        return await asyncio.to_thread(self.search_vectors, doc_id, vectors, k)

    def search_vectors(self, doc_id: str, vectors: NDArray[Any], k: int) -> list[Passage]:
        """`search` with the queries' vectors already computed (one row per query)."""
        if len(vectors) == 0:
            return []
        result = self.collection.query(
            query_embeddings=vectors,
            n_results=k * CANDIDATES_PER_K,
            where={"doc_id": doc_id},
            include=["documents", "metadatas", "distances"],
        )
        scores: dict[str, float] = {}
        found: dict[str, Passage] = {}
        for ids, texts, metadatas, distances in zip(
            result["ids"], result["documents"] or [], result["metadatas"] or [], result["distances"] or [], strict=True
        ):
            for pid, text, metadata, distance in zip(ids, texts, metadatas, distances, strict=True):
                scores[pid] = scores.get(pid, 0.0) + max(0.0, 1.0 - float(distance))
                found[pid] = _passage(pid, text or "", metadata)
        ranked = sorted(scores, key=lambda pid: (-round(scores[pid], 9), found[pid].index))
        return [found[pid] for pid in ranked[:k]]

    def passages(self, doc_id: str) -> list[Passage]:
        """Every passage of a document, in document order."""
        result = self.collection.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        items = [
            _passage(pid, text or "", metadata)
            for pid, text, metadata in zip(
                result["ids"], result["documents"] or [], result["metadatas"] or [], strict=True
            )
        ]
        return sorted(items, key=lambda passage: passage.index)

    def close(self) -> None:
        """Drop an in-memory collection; persistent ones stay."""
        if self._ephemeral:
            with contextlib.suppress(Exception):  # cleaning up memory must never mask a result
                self.client.delete_collection(self.collection.name)

    def _stored_fingerprint(self, doc_id: str) -> str | None:
        result = self.collection.get(where={"doc_id": doc_id}, limit=1, include=["metadatas"])
        metadatas = result["metadatas"] or []
        value = metadatas[0].get("doc_fingerprint") if metadatas else None
        return str(value) if value is not None else None


def flag_detected_injections(passages: Sequence[Passage]) -> None:
    """Add `DETECTOR_FLAG` to the passages the trained detector flags: once per passage, when it is indexed.

    The flag is stored with the passage, so retrieval hands it to the prompts and the critic at no cost per turn.
    """
    for passage, verdict in zip(passages, detect_injections([passage.text for passage in passages]), strict=True):
        if verdict.flagged and DETECTOR_FLAG not in passage.flags:
            passage.flags.append(DETECTOR_FLAG)


def _metadata(passage: Passage, fingerprint: str) -> dict[str, Any]:
    return {
        "doc_id": passage.doc_id,
        "index": passage.index,
        "flags": ",".join(passage.flags),
        "doc_fingerprint": fingerprint,
    }


def _passage(pid: str, text: str, metadata: Any) -> Passage:
    metadata = metadata or {}
    flags = str(metadata.get("flags") or "")
    return Passage(
        id=pid,
        doc_id=str(metadata.get("doc_id", "")),
        index=int(metadata.get("index", 0)),
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
