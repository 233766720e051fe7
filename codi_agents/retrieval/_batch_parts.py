"""The requests an `EmbeddingBatcher` queues, and what its callers get when a batch fails."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codi_agents.errors import CodiError, EmbeddingError

INTERACTIVE, BULK = 0, 1
"""Priorities: a conversation's requests go before a corpus's passages."""


class Job:
    """One caller's request: its parts (a bulk request has several) and the future that gets the vectors."""

    def __init__(self, parts: int) -> None:
        self.future: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
        self.results: list[np.ndarray | None] = [None] * parts
        self.remaining = parts

    def done(self, part: int, vectors: np.ndarray) -> None:
        self.results[part] = vectors
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(np.concatenate([r for r in self.results if r is not None]))

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(order=True)
class Part:
    priority: int
    sequence: int
    texts: list[str] = field(compare=False)
    job: Job = field(compare=False)
    index: int = field(compare=False)
    keep: bool = field(default=False, compare=False)
    sentences: bool = field(default=False, compare=False)
    """Passages: bulk, their vectors with their sentence vectors kept aside; else their sentence vectors."""


def failure(error: Exception, texts: int) -> CodiError:
    """What the callers of a failed batch get: the function's own `CodiError` (a copy each, so that their
    tracebacks stay apart), or an `EmbeddingError` that says what failed."""
    if isinstance(error, CodiError):
        try:
            copy = type(error)(*error.args)
        except Exception:
            copy = EmbeddingError(str(error))
        copy.__cause__ = error.__cause__
        copy.__suppress_context__ = True
        return copy
    failure = EmbeddingError(
        f"The embedding model failed on a batch of {texts} texts: {type(error).__name__}: {error}. "
        "Check the embedding function (or its server); the conversations that needed it are retried on resume."
    )
    failure.__cause__ = error
    return failure


def stacked(matrices: list[np.ndarray]) -> np.ndarray:
    """Passages' sentence vectors one after the other (a passage without sentences adds no row)."""
    rows = [matrix for matrix in matrices if len(matrix)]
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def said(embed: Any, attribute: str) -> int | None:
    value = getattr(embed, attribute, None)
    return value if isinstance(value, int) and value >= 1 else None
