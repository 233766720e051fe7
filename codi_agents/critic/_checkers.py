"""The trained checkers as the critic uses them: one shared instance each, and the digest of their model files.

The faithfulness cross-encoder (`codi_agents.checkers`) gives the critic its checker signals
(`_signals.CHECKER_SIGNALS`): one ONNX call per assistant turn, every claim of the reply in one batch.
The digest of the shipped model files enters `Calibration.digest()`, so data judged with other checker
weights gets other conversation ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

from codi_agents.checkers import FaithfulnessChecker, ReplyScore
from codi_agents.checkers._onnx import MODELS


@cache
def faithfulness_checker() -> FaithfulnessChecker:
    """The process-wide checker; its ONNX session loads on the first score."""
    return FaithfulnessChecker()


def reply_score(answer: str, passages: Sequence[str], question: str) -> ReplyScore | None:
    """How well `answer` is supported by `passages`, claim by claim; None for a reply with no words."""
    if not answer.strip() or not any(text.strip() for text in passages):
        return None
    try:
        return faithfulness_checker().score_reply(passages, answer, question)
    except ValueError:  # a reply of punctuation only: no claim to check
        return None


@cache
def checker_digest() -> str:
    """SHA-256 (16 hex digits) of `checkers.json` and every model file shipped beside it, once per process."""
    digest = hashlib.sha256()
    for path in sorted(MODELS.iterdir()):
        if path.suffix in {".json", ".onnx"} and path.is_file():
            digest.update(path.name.encode("utf-8"))
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
