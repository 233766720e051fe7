"""An OpenAI-compatible embeddings server in place of MiniLM: vectors, batching, retries, errors, the index, pickling.

Every test talks to the shipped fake server's `POST /v1/embeddings` over real HTTP: its vectors are
hashed bags of words salted by the model's name, so the expected vectors are computed here.
"""

from __future__ import annotations

import pickle
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from codi_agents.config import Settings
from codi_agents.errors import (
    ConfigError,
    EmbeddingError,
    EndpointDownError,
    RequestRejectedError,
    ServerUnavailableError,
)
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import chunk_document
from codi_agents.llm._local_server import free_port
from codi_agents.retrieval._batcher import EmbeddingBatcher, batcher_for
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction, default_embedding_function
from codi_agents.retrieval._index import DEFAULT_COLLECTION, PassageIndex
from codi_agents.retrieval._remote_embeddings import API_KEY_VARIABLE, ServerEmbeddingFunction
from codi_agents.testing import FakeOpenAIServer, Faults
from codi_agents.testing._embeddings import hashed_vector

KEY = "sk-embed-SECRET-0c4f7a91d2e85b36"
TEXTS = [f"passage {i} about number plates and the office number {i}" for i in range(10)]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(embedding_dimensions=48) as running:
        yield running


def server_function(url: str, **embedding: Any) -> ServerEmbeddingFunction:
    settings = Settings(embedding={"base_url": url, "model": "bge-small", "api_key": KEY, **embedding})
    function = default_embedding_function(settings)
    assert isinstance(function, ServerEmbeddingFunction)
    return function


def expected(texts: list[str], model: str = "bge-small", size: int = 48) -> np.ndarray:
    return np.stack([hashed_vector(text, size, salt=model) for text in texts])


def test_vectors_come_from_the_server_in_order_batch_size_texts_per_request(server: FakeOpenAIServer) -> None:
    function = server_function(server.base_url, batch_size=4)
    vectors = np.asarray(function(TEXTS))
    assert np.allclose(vectors, expected(TEXTS), atol=1e-6)
    stats = server.stats()
    assert stats["embedding_requests"] == 3 and stats["embedded_texts"] == 10  # 4 + 4 + 2
    assert function.dimension == 48


def test_the_batcher_sends_batch_size_texts_per_call_with_calls_in_parallel(server: FakeOpenAIServer) -> None:
    function = server_function(server.base_url, batch_size=5, max_concurrency=3)
    batcher = EmbeddingBatcher(function)
    assert (batcher.max_batch, batcher.parallel) == (5, 3)
    texts = [f"text number {i}" for i in range(23)]
    vectors = batcher.embed(texts, bulk=True)
    assert np.allclose(vectors, expected(texts), atol=1e-6)
    assert server.stats()["embedding_requests"] == 5  # 5 + 5 + 5 + 5 + 3: one request per batch
    assert batcher_for(function).max_batch == 5  # the shared batcher reads the same


def test_a_dimensions_setting_is_sent_and_the_model_changes_the_vectors(server: FakeOpenAIServer) -> None:
    small = server_function(server.base_url, dimensions=16)
    other = server_function(server.base_url, model="e5-base")
    assert np.allclose(np.asarray(small(TEXTS[:2])), expected(TEXTS[:2], size=16), atol=1e-6)
    assert np.allclose(np.asarray(other(TEXTS[:2])), expected(TEXTS[:2], model="e5-base"), atol=1e-6)
    assert not np.allclose(np.asarray(other(TEXTS[:2])), expected(TEXTS[:2]), atol=1e-3)


def test_rate_limits_are_retried_and_counted(server: FakeOpenAIServer) -> None:
    server.set_faults(Faults(embedding_rate_limit_first=3, retry_after=0.01))
    function = server_function(server.base_url, max_retries=4)
    vectors = np.asarray(function(TEXTS[:3]))
    assert np.allclose(vectors, expected(TEXTS[:3]), atol=1e-6)
    assert server.stats()["embedding_rate_limited"] == 3
    client = function._http()
    assert client.stats.rate_limited == 3 and client.stats.retries == 3 and client.stats.errors == 0


def test_server_errors_after_the_retries_are_a_clear_error(server: FakeOpenAIServer) -> None:
    function = server_function(server.base_url, max_retries=1)
    function(["warm up: the server has answered once"])
    server.set_faults(Faults(embedding_fail_all_status=503))
    with pytest.raises(ServerUnavailableError, match=r"bge-small.*did not answer after 2 attempts: HTTP 503"):
        function(["later"])
    assert server.stats()["status_503"] == 2


def test_a_server_that_is_down_raises_the_endpoint_down_error_through_the_batcher() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    function = server_function(url, max_retries=1)
    with pytest.raises(EndpointDownError, match=r"embeddings server at http://127\.0\.0\.1:\d+/v1 \(model bge-small\)"):
        batcher_for(function).embed(["a question"])
    with pytest.raises(EndpointDownError, match="did not answer in 2 attempts"):
        PassageIndex.open(function)  # learning the vector size finds it before any conversation starts


def test_vectors_of_another_size_than_before_name_the_model_and_both_sizes(server: FakeOpenAIServer) -> None:
    server.set_faults(Faults(embedding_wrong_size_after=1))
    function = server_function(server.base_url)
    function(["first batch"])
    with pytest.raises(EmbeddingError, match=r"bge-small .* vectors of size 49 after vectors of size 48"):
        batcher_for(function).embed(["second batch"])


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (Faults(embedding_missing_vectors=1), r"answered 2 vectors for 3 texts"),
        (Faults(embedding_empty=True), r"answered 3 empty vectors"),
    ],
)
def test_a_wrong_count_or_empty_vectors_are_a_clear_error(
    server: FakeOpenAIServer, faults: Faults, message: str
) -> None:
    server.set_faults(faults)
    with pytest.raises(EmbeddingError, match=message):
        server_function(server.base_url)(TEXTS[:3])
    assert server.stats()["embedding_requests"] == 1  # a bad answer is not asked again


def test_a_refusal_that_quotes_the_key_never_shows_it(server: FakeOpenAIServer) -> None:
    server.set_faults(Faults(reject_key=True))
    function = server_function(server.base_url)
    with pytest.raises(RequestRejectedError, match="refused the request: HTTP 401") as caught:
        batcher_for(function).embed(["a question"])
    shown = "".join(traceback.format_exception(caught.value))
    assert "Incorrect API key provided" in shown and KEY not in shown


def test_fingerprint_names_the_model_and_size_not_the_server_or_key(server: FakeOpenAIServer) -> None:
    one = server_function(server.base_url).fingerprint()
    with FakeOpenAIServer(embedding_dimensions=48) as elsewhere:
        assert server_function(elsewhere.base_url, api_key="sk-other-key-1234567890").fingerprint() == one
    assert server_function(server.base_url, model="e5-base").fingerprint() != one
    assert server_function(server.base_url, dimensions=16).fingerprint() != one
    assert KEY not in one and "bge-small" in one and "48" in one


def test_settings_fingerprint_follows_the_embedding_model_only() -> None:
    plain = Settings()
    served = Settings(embedding={"base_url": "http://a:8080/v1", "model": "bge-small", "api_key": KEY})
    assert Settings(embedding={"api_key": KEY}).fingerprint() == plain.fingerprint()  # a key alone configures nothing
    assert served.fingerprint() != plain.fingerprint()
    moved = served.model_copy(update={"embedding": served.embedding.model_copy(update={"base_url": "http://b/v1"})})
    tuned = Settings(embedding={"base_url": "http://a:8080/v1", "model": "bge-small", "batch_size": 8, "timeout": 5})
    assert moved.fingerprint() == served.fingerprint() == tuned.fingerprint()
    assert Settings(embedding={"model": "e5-base", "base_url": "http://a/v1"}).fingerprint() != served.fingerprint()
    assert KEY in served.secrets() and KEY not in str(served.output_affecting())


def test_an_index_reopens_with_its_model_and_refuses_another(server: FakeOpenAIServer, tmp_path: Path) -> None:
    document = Document(id="plates", title="Plates", text="Number plates are issued by the office. " * 40)
    passages = chunk_document(document, chunk_size=200, chunk_overlap=0)
    path = str(tmp_path / "index")
    index = PassageIndex.open(server_function(server.base_url), path=path)
    assert index.add(document, passages)
    assert index.search(document, ["who issues number plates?"], 2)
    index.flush()

    again = PassageIndex.open(server_function(server.base_url), path=path)
    assert not again.add(document, passages)  # same model: nothing embedded again
    with pytest.raises(ConfigError, match=r"built with the embedding model bge-small, not e5-base"):
        PassageIndex.open(server_function(server.base_url, model="e5-base"), path=path)
    with pytest.raises(ConfigError, match="another embedding function"):
        PassageIndex.open(MiniLMEmbeddingFunction(), path=path)


def test_an_index_of_vectors_of_another_size_names_both_sizes(tmp_path: Path) -> None:
    with FakeOpenAIServer(embedding_dimensions=48) as first:
        index = PassageIndex.open(server_function(first.base_url), path=str(tmp_path / "index"))
        document = Document(id="d", title="D", text="Plates and licences. " * 20)
        index.add(document, chunk_document(document, chunk_size=200, chunk_overlap=0))
        index.flush()
    with FakeOpenAIServer(embedding_dimensions=32) as resized, pytest.raises(ConfigError) as caught:
        PassageIndex.open(server_function(resized.base_url), path=str(tmp_path / "index"))
    assert "holds vectors of size 48" in str(caught.value) and "makes vectors of size 32" in str(caught.value)
    assert "bge-small" in str(caught.value)


def test_chroma_reopens_the_collection_with_the_key_from_the_environment_never_stored(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "index"
    index = PassageIndex.open(server_function(server.base_url), path=str(path))
    document = Document(id="d", title="D", text="Plates and licences at the office. " * 20)
    index.add(document, chunk_document(document, chunk_size=200, chunk_overlap=0))
    index.flush()
    assert not [p for p in path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]

    monkeypatch.setenv(API_KEY_VARIABLE, KEY)
    client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
    reopened = client.get_collection(DEFAULT_COLLECTION)  # no embedding function given: Chroma builds ours
    function = reopened.configuration.get("embedding_function")
    assert isinstance(function, ServerEmbeddingFunction)
    assert function.spec.model == "bge-small" and function.spec.api_key is not None
    assert function.spec.api_key.get_secret_value() == KEY
    found = reopened.query(query_texts=["plates at the office"], n_results=1)
    assert found["ids"][0]


def test_the_function_pickles_without_its_connections(server: FakeOpenAIServer) -> None:
    function = server_function(server.base_url)
    function(["learn the size"])
    copy = pickle.loads(pickle.dumps(function))
    assert copy._client is None and copy.dimension == 48  # the size travels; no request made for it
    assert np.allclose(np.asarray(copy(TEXTS[:2])), expected(TEXTS[:2]), atol=1e-6)
    function.close()
    assert np.asarray(function(TEXTS[:1])).shape == (1, 48)  # closed connections reopen on use


def test_timeouts_are_retried_then_a_clear_error() -> None:
    with FakeOpenAIServer(latency=0.5, embedding_dimensions=48) as slow:
        function = server_function(slow.base_url, timeout=0.05, max_retries=1)
        with pytest.raises(EndpointDownError, match=r"did not answer in 2 attempts: .*Timeout"):
            function(["a question"])
        assert slow.stats()["embedding_requests"] == 2


class _SlowFunction:
    """Records how many calls run at once; says how it wants to be called, as a server's function does."""

    batch_size = 4
    max_concurrency = 3

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()
        self.all_in = threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            if self.running == self.max_concurrency:
                self.all_in.set()
        self.all_in.wait(timeout=10)  # the first calls hold on until three run at once (never, one at a time)
        time.sleep(0.01)
        with self.lock:
            self.running -= 1
        return np.ones((len(texts), 8), dtype=np.float32)


def test_the_batcher_makes_at_most_max_concurrency_calls_at_once() -> None:
    function = _SlowFunction()
    batcher = EmbeddingBatcher(function)
    vectors = batcher.embed([f"text {i}" for i in range(40)], bulk=True)
    assert vectors.shape == (40, 8) and batcher.calls == 10  # 40 texts, 4 per call
    assert function.most == 3  # calls overlapped, never more than the function takes
