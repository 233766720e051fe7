"""A one-logit ONNX classifier on ONNX Runtime, loaded on first use and shared by the checkers."""

from __future__ import annotations

import json
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from codi_agents.checkers._text import PAD_ID, load_tokenizer

MODELS = Path(__file__).parent / "models"
TOKENIZER_FILE = MODELS / "tokenizer.json"


@cache
def model_settings() -> dict[str, Any]:
    """`models/checkers.json`: thresholds and input sizes written by the training's evaluation step."""
    settings: dict[str, Any] = json.loads((MODELS / "checkers.json").read_text(encoding="utf-8"))
    return settings


class OnnxClassifier:
    """An int8 ONNX cross-encoder or window classifier; the session and tokenizer load once, lazily, thread-safely."""

    def __init__(self, model_path: Path, tokenizer_path: Path = TOKENIZER_FILE, threads: int | None = None) -> None:
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.threads = threads or min(2, os.cpu_count() or 1)
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[ort.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                if not self.model_path.is_file():
                    raise FileNotFoundError(f"checker model missing: {self.model_path} (reinstall codi-agents)")
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
                self._tokenizer = load_tokenizer(str(self.tokenizer_path))
            return self._session, self._tokenizer

    @property
    def tokenizer(self) -> Tokenizer:
        """The WordPiece tokenizer (loads the model too on first use)."""
        return self._load()[1]

    def probabilities(self, encoded: list[tuple[list[int], list[int]]], batch_size: int = 16) -> np.ndarray:
        """Sigmoid of the logit for each encoded input, batched by similar length to limit padding."""
        session, _ = self._load()
        out = np.zeros(len(encoded), dtype=np.float32)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            width = max(len(encoded[i][0]) for i in index)
            ids = np.full((len(index), width), PAD_ID, dtype=np.int64)
            types = np.zeros_like(ids)
            mask = np.zeros_like(ids)
            for row, i in enumerate(index):
                tokens, type_ids = encoded[i]
                ids[row, : len(tokens)] = tokens
                types[row, : len(tokens)] = type_ids
                mask[row, : len(tokens)] = 1
            (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            out[index] = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float32).reshape(-1)))
        return out
