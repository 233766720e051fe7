"""The embedded embedding model: int8 all-MiniLM-L6-v2 on ONNX Runtime, shipped inside the package.

Chroma's own default model downloads its weights at first use, which fails offline. codi ships the
network as `models/minilm-l6-v2.int8.onnx`, made by `training/embedder/export.py` from the Apache-2.0
weights: every MatMul computes in int8 (per-channel weight scales; mean cosine 0.995 against full
precision on doc2dial passages), about twice the passages per second of the float model on 2 cores.
It reads the checkers' WordPiece tokenizer, which is the same.

The activations are quantised with one scale per call, so a batch of texts would give a text a slightly
different vector next to different neighbours. Each text is therefore run alone (no padding either),
on as many parallel single-threaded runs as there are cores: a text's vector depends on the text only,
whichever batch, run or cache it comes from. ONNX Runtime's threads do not spin while idle, so on a
busy machine they leave the cores to the event loop. The function is registered with Chroma, so a
persisted collection reopens with it.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from codi_agents._sentences import sentence_spans
from codi_agents.config._settings import Settings
from codi_agents.errors import ConfigError
from codi_agents.retrieval._late_chunking import pool_sentences

MAX_TOKENS = 256
"""all-MiniLM-L6-v2 was trained on sequences of up to 256 word pieces."""
MODEL_FILE = Path(__file__).parent / "models" / "minilm-l6-v2.int8.onnx"
TOKENIZER_FILE = Path(__file__).parents[1] / "checkers" / "models" / "tokenizer.json"
"""all-MiniLM-L6-v2's WordPiece tokenizer, shipped once for the embedder and the checkers (all three are MiniLM)."""


def model_files() -> tuple[Path, Path]:
    """Paths of the shipped ONNX model and its tokenizer."""
    for path in (MODEL_FILE, TOKENIZER_FILE):
        if not path.is_file():
            raise ConfigError(f"Embedding model file missing: {path}. Reinstall codi-agents (pip install -e .).")
    return MODEL_FILE, TOKENIZER_FILE


class _MiniLM:
    """The loaded tokenizer and ONNX session, and the threads that run it; one per process."""

    def __init__(self, threads: int | None, model_path: Path | None = None) -> None:
        from tokenizers import Tokenizer

        from codi_agents.checkers._onnx import shared_runs, single_threaded_session, timed_run

        shipped_model, tokenizer_path = model_files()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        self.session = single_threaded_session(model_path or shipped_model)
        self.input_names = {item.name for item in self.session.get_inputs()}
        self.runs = shared_runs(threads or os.cpu_count() or 1)
        self.timed_run = timed_run

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for `texts`, each text run on its own (see the module's docstring)."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        tokens = [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]
        return np.stack(self.runs.map(self._embed_one, tokens))

    def embed_passages(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unit vectors for `texts`, and for each text the unit vectors of its sentences (`_sentences`), pooled
        from the same run (`_late_chunking`)."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32), []
        runs = self.runs.map(self._passage_one, list(zip(texts, self.tokenizer.encode_batch(texts), strict=True)))
        return np.stack([vector for vector, _ in runs]), [sentences for _, sentences in runs]

    def _passage_one(self, item: tuple[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        text, encoding = item
        hidden = self._hidden(encoding.ids)
        spans = sentence_spans(text)
        pooled, uncovered = pool_sentences(hidden, encoding.offsets, spans)
        for row in uncovered:  # past the model's window: embedded on its own
            start, end = spans[row]
            pooled[row] = self._embed_one(self.tokenizer.encode(text[start:end]).ids)
        return _unit(hidden.mean(axis=0)), pooled

    def _embed_one(self, token_ids: list[int]) -> np.ndarray:
        return _unit(self._hidden(token_ids).mean(axis=0))

    def _hidden(self, token_ids: list[int]) -> np.ndarray:
        """The model's last hidden state: one row per word piece."""
        ids = np.asarray([token_ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden: np.ndarray = self.timed_run("embedder", self.session, None, feeds)[0][0]
        return hidden


def _unit(vector: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)
    return unit


@lru_cache(maxsize=1)
def _files_digest() -> str:
    """SHA-256 (16 hex digits) of the shipped model and tokenizer files, once per process."""
    digest = hashlib.sha256()
    for path in model_files():
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=4)
def _load(threads: int | None) -> _MiniLM:
    return _MiniLM(threads)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8, ONNX) from PyPI wheels: no download, no network."""

    dimension = 384
    """The size of its vectors (known without loading the model)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def __call__(self, input: Documents) -> Embeddings:
        return list(_load(self.threads).embed(list(input)))

    def embed_passages(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The vectors of `texts` (as calling the function gives them) and, from the same runs, each text's
        sentence vectors (`retrieval._late_chunking`): the batcher asks for these when it indexes passages."""
        return _load(self.threads).embed_passages(list(texts))

    @staticmethod
    def name() -> str:
        return "codi_minilm_l6_v2_int8"

    def fingerprint(self) -> str:
        """What decides its vectors: the name and a digest of the model and tokenizer files (the passage index keys
        on it). The thread count changes speed only."""
        return f"{self.name()}:{_files_digest()}"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "l2", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        threads = config.get("threads")
        return MiniLMEmbeddingFunction(threads=int(threads) if threads else None)

    def get_config(self) -> dict[str, Any]:
        return {"threads": self.threads}


def default_embedding_function(settings: Settings | None = None) -> EmbeddingFunction[Documents]:
    """The embedding function codi uses when none is given: the `[embedding]` server of `settings` when they
    name one (`retrieval._remote_embeddings`), else the packaged MiniLM (which is not loaded here)."""
    if settings is not None and settings.embedding.configured:
        from codi_agents.retrieval._remote_embeddings import ServerEmbeddingFunction

        server = ServerEmbeddingFunction.from_settings(settings)
        if server is not None:
            return server
    model_files()
    return MiniLMEmbeddingFunction()


def embedding_identity(embed: Any) -> str:
    """What names an embedding function's vectors in fingerprints, without calling it: its Chroma name, and
    its model when it has one (a server's); MiniLM and test doubles are named by their Chroma name alone."""
    name = getattr(embed, "name", None)
    identity = name() if callable(name) else type(embed).__name__
    model = getattr(embed, "model", None)
    return f"{identity}:{model}" if isinstance(model, str) and model else str(identity)
