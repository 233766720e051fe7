"""ONNX Runtime for codi's int8 models: one input per run, on parallel single-threaded runs.

The int8 models quantise their activations with one scale per call, so in a batch an input's score (or
vector) would depend on the inputs beside it, and a passage could be flagged in a run but not by `codi scan`.
Each input is therefore run alone (no padding either), as many runs at once as there are cores, on one pool
that all of the process's models share (`shared_runs`). Measured on 2 cores: faster than batches of 16 padded
to their longest input, and indexing (embedder and detector at once) 54 → about 60 passages/s with one pool
instead of one per model.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from codi_agents.checkers._text import load_tokenizer

_T = TypeVar("_T")
_R = TypeVar("_R")
MODELS = Path(__file__).parent / "models"
TOKENIZER_FILE = MODELS / "tokenizer.json"


@cache
def model_settings() -> dict[str, Any]:
    """`models/checkers.json`: thresholds and input sizes written by the training's evaluation step."""
    settings: dict[str, Any] = json.loads((MODELS / "checkers.json").read_text(encoding="utf-8"))
    return settings


def single_threaded_session(model_path: Path) -> ort.InferenceSession:
    """A CPU session whose runs use one thread each and never spin while idle."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


_model_seconds: dict[str, float] = {}
_model_seconds_lock = threading.Lock()


def timed_run(model: str, session: ort.InferenceSession, outputs: list[str] | None, feeds: dict[str, Any]) -> Any:
    """`session.run`, its CPU time added to `model`'s in `model_cpu_seconds` (a single-threaded session runs on the
    calling thread, so that thread's CPU time is the run's)."""
    started = time.thread_time()
    try:
        return session.run(outputs, feeds)
    finally:
        spent = time.thread_time() - started
        with _model_seconds_lock:
            _model_seconds[model] = _model_seconds.get(model, 0.0) + spent


def model_cpu_seconds() -> dict[str, float]:
    """CPU seconds this process has spent running each model (`embedder`, `injection`, `faithfulness`)."""
    with _model_seconds_lock:
        return dict(_model_seconds)


class ParallelRuns:
    """A pool of `threads` threads; remade in a forked child, which does not inherit threads."""

    def __init__(self, threads: int, name: str = "codi-onnx") -> None:
        self.threads = threads
        self.name = name
        self._pool: tuple[int, ThreadPoolExecutor] | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        """This process's threads of the pool."""
        with self._lock:
            if self._pool is None or self._pool[0] != os.getpid():
                self._pool = (os.getpid(), ThreadPoolExecutor(self.threads, thread_name_prefix=self.name))
            return self._pool[1]

    def map(self, run: Callable[[_T], _R], inputs: Sequence[_T]) -> list[_R]:
        """`run` on each input, in order; a single input runs on the calling thread."""
        if len(inputs) <= 1:
            return [run(item) for item in inputs]
        return list(self.executor().map(run, inputs))


@cache
def shared_runs(threads: int) -> ParallelRuns:
    """One pool per thread count for every model in the process, so that models called at once (the embedder and
    the detector while a corpus is indexed) do not run more threads than there are cores."""
    return ParallelRuns(threads)


class OnnxClassifier:
    """An int8 ONNX cross-encoder or window classifier; the session and tokenizer load once, lazily, thread-safely."""

    def __init__(self, model_path: Path, tokenizer_path: Path = TOKENIZER_FILE, threads: int | None = None) -> None:
        self.model_path = model_path
        self.name = model_path.name.split(".")[0]
        """What `model_cpu_seconds` calls it: the file's name without suffixes (`injection`, `faithfulness`)."""
        self.tokenizer_path = tokenizer_path
        self.threads = threads or os.cpu_count() or 1
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()
        self._runs = shared_runs(self.threads)

    def _load(self) -> tuple[ort.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                if not self.model_path.is_file():
                    raise FileNotFoundError(f"checker model missing: {self.model_path} (reinstall codi-agents)")
                self._session = single_threaded_session(self.model_path)
                self._tokenizer = load_tokenizer(str(self.tokenizer_path))
            return self._session, self._tokenizer

    @property
    def tokenizer(self) -> Tokenizer:
        """The WordPiece tokenizer (loads the model too on first use)."""
        return self._load()[1]

    def probabilities(self, encoded: Sequence[tuple[list[int], list[int]]]) -> np.ndarray:
        """Sigmoid of the logit for each encoded input (token ids, token types), each input run alone."""
        session, _ = self._load()

        def logit(item: tuple[list[int], list[int]]) -> float:
            ids = np.asarray([item[0]], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.asarray([item[1]])}
            (logits,) = timed_run(self.name, session, ["logits"], feeds)
            return float(np.asarray(logits).reshape(-1)[0])

        logits = np.asarray(self._runs.map(logit, list(encoded)), dtype=np.float32)
        out: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
        return out
