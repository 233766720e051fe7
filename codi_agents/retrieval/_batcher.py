"""Embedding like a server does: concurrent requests gathered into one model call, off the event loop.

Conversations in flight each ask for a few embeddings at a time (a retrieval's queries, the sentences of
a reply the critic judges). The batcher queues the requests, waits a few milliseconds for others, and
embeds the distinct texts of all of them in one model call on its own worker thread (ONNX Runtime
releases the GIL, so the event loop keeps serving HTTP); requests arriving meanwhile make the next batch.

A bounded LRU keyed by a hash of each text means a text is embedded once however often it is asked for;
texts asked for with `keep` (passage sentences) are also looked up in, and written to, the `store` kept
beside a persistent index. Bulk requests (a document's passages) skip both, are cut into `max_batch`-sized
parts and wait behind interactive ones, so a conversation's query is not stuck behind a corpus.

Usable from any thread and any event loop: `embed()` blocks its caller, `aembed()` awaits. The worker
thread stops after a second idle and starts again on the next request. An embedding function may say how
it wants to be called: `batch_size` (texts per call) and `max_concurrency` (calls at once; each batch of an
embeddings server goes out on a thread of its own). A `CodiError` it raises (server down, request refused,
wrong vector size) reaches every caller of the batch as it is, so a run stops or fails as on a chat endpoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import queue
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codi_agents.errors import EmbeddingError
from codi_agents.retrieval._batch_parts import BULK, INTERACTIVE, Job, Part, failure, said, stacked
from codi_agents.retrieval._passage_sentences import PassageSentences
from codi_agents.retrieval._vector_store import VectorStore

EmbedFunction = Callable[[list[str]], Any]
"""Texts to vectors (one row per text); a Chroma embedding function qualifies."""

WINDOW_SECONDS = 0.003
"""How long the first request of a batch waits for others to join it."""
MAX_BATCH = 64
"""Texts per model call; larger requests are cut into parts of this size."""
CACHE_TEXTS = 16384
"""Vectors kept: about 25 MB of 384-d float32 vectors."""
IDLE_SECONDS = 1.0
"""The worker thread ends after this long without requests (and starts again on the next)."""


class EmbeddingBatcher:
    """Gathers embedding requests from many callers into batched model calls on one worker thread."""

    def __init__(
        self,
        embed: EmbedFunction,
        *,
        window_seconds: float = WINDOW_SECONDS,
        max_batch: int | None = None,
        cache_size: int = CACHE_TEXTS,
        weak: bool = False,
        parallel: int | None = None,
    ) -> None:
        """`weak` holds `embed` by a weak reference, so a batcher kept beside its function does not keep it alive.
        `max_batch` and `parallel` (model calls at once) default to what `embed` says, else `MAX_BATCH` and 1."""
        self._model: Callable[[], EmbedFunction | None] = weakref.ref(embed) if weak else (lambda: embed)
        self.window_seconds = window_seconds
        self.max_batch = max(1, max_batch or said(embed, "batch_size") or MAX_BATCH)
        self.parallel = max(1, parallel or said(embed, "max_concurrency") or 1)
        self._slots = threading.BoundedSemaphore(self.parallel)
        self.cache_size = cache_size
        self.calls = 0
        """Model calls made."""
        self.embedded = 0
        """Texts the model embedded."""
        self.hits = 0
        """Texts answered from the cache."""
        self.store: VectorStore | None = None
        """Where vectors asked for with `keep=True` are looked up first and kept (the persistent index's file)."""
        self.late = callable(getattr(embed, "embed_passages", None))
        """The function pools a passage's sentence vectors from the passage's own run (`_late_chunking`)."""
        self.passage_sentences = PassageSentences()
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._queue: queue.PriorityQueue[Part] = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(
        self, texts: Sequence[str], *, bulk: bool = False, keep: bool = False, sentences: bool = False
    ) -> concurrent.futures.Future[np.ndarray]:
        """Queue `texts`; the future gets their vectors in order (one row each). Cached texts need no model call;
        `keep` texts (passage sentences) are looked up in `store` before the model embeds them, and kept in it.

        `sentences` (only when `late`) treats the texts as passages: in bulk, their sentence vectors are made in
        the same runs and kept aside; otherwise the future gets those kept sentence vectors, passage after passage
        (made now for passages not indexed here)."""
        texts = list(texts)
        sentences = sentences and self.late
        if not texts:
            empty: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
            empty.set_result(np.zeros((0, 0), dtype=np.float32))
            return empty
        if sentences and not bulk:
            known = self.passage_sentences.cached(texts)
            if len(known) == len(set(texts)):
                with self._lock:
                    self.hits += len(texts)
                ready_rows: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
                ready_rows.set_result(stacked([known[text] for text in texts]))
                return ready_rows
        elif not bulk:
            cached = self._cached(texts)
            if cached is not None:
                ready: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
                ready.set_result(cached)
                return ready
        size = self.max_batch if bulk else max(len(texts), 1)
        chunks = [texts[start : start + size] for start in range(0, len(texts), size)] or [[]]
        job = Job(len(chunks))
        with self._lock:
            for index, chunk in enumerate(chunks):
                priority = BULK if bulk else INTERACTIVE
                part = Part(priority, next(self._sequence), chunk, job, index, keep and not bulk, sentences)
                self._queue.put(part)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="codi-embedding-batcher", daemon=True)
                self._thread.start()
        return job.future

    def embed(
        self, texts: Sequence[str], *, bulk: bool = False, keep: bool = False, sentences: bool = False
    ) -> np.ndarray:
        """The vectors of `texts` (see `submit`), blocking the calling thread until its batch has run."""
        return self.submit(texts, bulk=bulk, keep=keep, sentences=sentences).result()

    async def aembed(
        self, texts: Sequence[str], *, bulk: bool = False, keep: bool = False, sentences: bool = False
    ) -> np.ndarray:
        """The vectors of `texts` (see `submit`), awaited: the event loop runs on while the batch is embedded."""
        return await asyncio.wrap_future(self.submit(texts, bulk=bulk, keep=keep, sentences=sentences))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """`embed(texts)`: the batcher is itself an embedding function."""
        return self.embed(texts)

    # -- the worker thread ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            self._slots.acquire()  # with every call in flight, requests wait in the queue and make one batch
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                self._slots.release()
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            size = len(first.texts)
            deadline = time.monotonic() + self.window_seconds
            while size < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    part = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(part)
                size += len(part.texts)
            if self.parallel == 1:
                self._run_and_release(batch)
            else:
                threading.Thread(target=self._run_and_release, args=(batch,), daemon=True).start()

    def _run_and_release(self, batch: list[Part]) -> None:
        try:
            self._run(batch)
        except Exception as error:  # never leave a caller waiting on a thread that died
            for part in batch:
                part.job.fail(EmbeddingError(f"Embedding a batch failed unexpectedly: {error!r}."))
        finally:
            self._slots.release()

    def _run(self, batch: list[Part]) -> None:
        asked = [part for part in batch if part.priority == BULK or not part.sentences]  # a vector per text
        rows_asked = [part for part in batch if part.priority == INTERACTIVE and part.sentences]  # sentence rows
        keys = {text: text_key(text) for part in asked for text in part.texts}
        vectors: dict[str, np.ndarray] = {}
        interactive = {text for part in asked if part.priority == INTERACTIVE for text in part.texts}
        with self._lock:
            for text in interactive:
                if (found := self._cache.get(keys[text])) is not None:
                    self._cache.move_to_end(keys[text])
                    vectors[text] = found
        kept = {text for part in asked if part.keep for text in part.texts}
        store = self.store
        if store is not None and kept:
            vectors.update(store.vectors({text: keys[text] for text in kept if text not in vectors}))
        missing = [text for text in keys if text not in vectors]
        pooled = {text for part in asked if part.sentences for text in part.texts}
        matrices = self.passage_sentences.found((text for part in rows_asked for text in part.texts), store)
        to_pool = [text for text in missing if text in pooled]  # passages being indexed: always embedded
        rows_missing = dict.fromkeys(text for part in rows_asked for text in part.texts if text not in matrices)
        to_pool += [text for text in rows_missing if text not in pooled]
        plain = [text for text in missing if text not in pooled]
        try:
            fresh, fresh_matrices = self._embed_missing(plain, to_pool)
        except Exception as error:
            for part in batch:
                part.job.fail(failure(error, len(plain) + len(to_pool)))
            return
        vectors.update({text: vector for text, vector in fresh.items() if text in keys})
        self.passage_sentences.keep(fresh_matrices, store)
        matrices.update(fresh_matrices)
        with self._lock:
            self.calls += 1 if plain or to_pool else 0
            self.embedded += len(plain) + len(to_pool)
            self.hits += sum(len(part.texts) for part in batch) - len(plain) - len(to_pool)
            if self.cache_size > 0:
                for text in interactive:
                    if keys[text] not in self._cache:
                        self._cache[keys[text]] = vectors[text]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        if store is not None and kept:
            store.put((keys[text], vectors[text]) for text in missing if text in kept)
        for part in asked:
            rows = [vectors[text] for text in part.texts]
            part.job.done(part.index, np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32))
        for part in rows_asked:
            part.job.done(part.index, stacked([matrices[text] for text in part.texts]))

    def _embed_missing(
        self, plain: list[str], passages: list[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Vectors of `plain` and `passages` from the model, and the sentence vectors of `passages` (`late`)."""
        if not plain and not passages:
            return {}, {}
        model = self._model()
        if model is None:
            raise RuntimeError("the embedding function was garbage-collected while requests were waiting")
        vectors: dict[str, np.ndarray] = {}
        matrices: dict[str, np.ndarray] = {}
        if plain:
            fresh = np.asarray(model(plain), dtype=np.float32)
            if fresh.ndim != 2 or fresh.shape[0] != len(plain):
                raise ValueError(f"it returned an array of shape {fresh.shape} for {len(plain)} texts")
            vectors.update(zip(plain, fresh, strict=True))
        if passages:
            pooled, sentence_rows = model.embed_passages(passages)  # type: ignore[attr-defined]
            if len(pooled) != len(passages) or len(sentence_rows) != len(passages):
                raise ValueError(f"it returned {len(pooled)} vectors for {len(passages)} passages")
            vectors.update(zip(passages, pooled, strict=True))
            matrices.update(zip(passages, sentence_rows, strict=True))
        return vectors, matrices

    def _cached(self, texts: list[str]) -> np.ndarray | None:
        """All of `texts` from the cache, or None when any is missing."""
        if not texts or self.cache_size <= 0:
            return None
        with self._lock:
            rows = [self._cache.get(text_key(text)) for text in texts]
            if any(row is None for row in rows):
                return None
            for text in texts:
                self._cache.move_to_end(text_key(text))
            self.hits += len(texts)
        return np.stack(rows)  # type: ignore[arg-type]


def text_key(text: str) -> bytes:
    """The key a text's vector is cached and kept under: a 16-byte hash of the text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


_batchers: weakref.WeakKeyDictionary[Any, EmbeddingBatcher] = weakref.WeakKeyDictionary()
_batchers_lock = threading.Lock()


def batcher_for(embed: EmbedFunction) -> EmbeddingBatcher:
    """The batcher shared by everything that embeds with `embed` (the index and the critic): one per function."""
    if isinstance(embed, EmbeddingBatcher):
        return embed
    with _batchers_lock:
        try:
            batcher = _batchers.get(embed)
            if batcher is None:
                batcher = _batchers[embed] = EmbeddingBatcher(embed, weak=True)
        except TypeError:  # not weakly referenceable: a batcher of its own, not shared
            return EmbeddingBatcher(embed)
    return batcher
