"""Does a document chunk carry an instruction aimed at the model that reads it? A small trained classifier.

The model (`models/injection.int8.onnx`, see `models/injection.md`) scores windows of consecutive sentences
and lines (at most 128 tokens each); a chunk's score is its highest window's. When a window is flagged, its
sentences are scored one by one to name the sentence that carries the instruction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from codi_agents.checkers._onnx import MODELS, TOKENIZER_FILE, OnnxClassifier, model_settings
from codi_agents.checkers._text import encode_single, split_sentences, windows

DETECTOR_FILE = MODELS / "injection.int8.onnx"


@cache
def detector_digest() -> str:
    """SHA-256 (16 hex digits) of what decides the shipped detector's verdicts: its model file, its tokenizer and
    its settings in `checkers.json`; once per process. The passage index stores the verdicts, so it keys on this."""
    digest = hashlib.sha256()
    for path in (DETECTOR_FILE, TOKENIZER_FILE):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(model_settings()["injection"], sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class InjectionScore:
    """The verdict on one chunk."""

    score: float
    """Probability that the chunk holds an injected instruction (its highest window's); 0.0 for empty text."""
    flagged: bool
    """`score >= threshold`."""
    sentence: str | None
    """The sentence most likely to be the instruction, when flagged; otherwise None."""


class InjectionDetector:
    """Scores document chunks with the shipped injection classifier."""

    def __init__(self, classifier: OnnxClassifier | None = None, threshold: float | None = None) -> None:
        self.classifier = classifier or OnnxClassifier(DETECTOR_FILE)
        settings = model_settings()["injection"]
        self.threshold = float(settings["threshold"]) if threshold is None else threshold
        self.window_tokens = int(settings["window_tokens"])

    def _probabilities(self, texts: Sequence[str]) -> list[float]:
        encoded = encode_single(self.classifier.tokenizer, texts, self.window_tokens)
        return [float(p) for p in self.classifier.probabilities(encoded)]

    def score_chunks(self, chunks: Sequence[str]) -> list[InjectionScore]:
        """One verdict per chunk; all windows of all chunks are scored in one batched pass."""
        tokenizer = self.classifier.tokenizer
        per_chunk = [windows(chunk, tokenizer, self.window_tokens) for chunk in chunks]
        flat = [window for group in per_chunk for window in group]
        probabilities = self._probabilities(flat) if flat else []
        out: list[InjectionScore] = []
        start = 0
        for group in per_chunk:
            scores = probabilities[start : start + len(group)]
            start += len(group)
            if not scores:
                out.append(InjectionScore(0.0, False, None))
                continue
            best = max(range(len(scores)), key=scores.__getitem__)
            flagged = scores[best] >= self.threshold
            out.append(InjectionScore(scores[best], flagged, self._sentence(group[best]) if flagged else None))
        return out

    def score(self, chunk: str) -> InjectionScore:
        """The verdict on one chunk."""
        return self.score_chunks([chunk])[0]

    def _sentence(self, window: str) -> str:
        sentences = split_sentences(window)
        if len(sentences) <= 1:
            return window
        scores = self._probabilities(sentences)
        return sentences[max(range(len(sentences)), key=scores.__getitem__)]
