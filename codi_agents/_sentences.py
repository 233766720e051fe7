"""Sentences of a text, and where each sits in it.

The critic compares reply sentences with passage sentences, and the embedder pools a passage's sentence
vectors from the passage's own run (`retrieval._late_chunking`); both cut text here, so they agree on
what a sentence is. A regular expression, not a model: the cut is cheap and the same on every machine.
"""

from __future__ import annotations

import re
from functools import lru_cache

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
MIN_CHARACTERS = 3
"""Pieces shorter than this (after stripping) are not sentences."""


CACHED_TEXTS = 8192
"""Texts whose cut is remembered: passages are cut again at every turn that shows them."""


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """`(start, end)` character offsets of the sentences of `text`, stripped of surrounding white space."""
    return list(_spans(text))


def sentences(text: str) -> list[str]:
    """Sentences of a text, dropping empty pieces."""
    return list(_sentences(text))


@lru_cache(maxsize=CACHED_TEXTS)
def _sentences(text: str) -> tuple[str, ...]:
    return tuple(text[start:end] for start, end in _spans(text))


@lru_cache(maxsize=CACHED_TEXTS)
def _spans(text: str) -> tuple[tuple[int, int], ...]:
    spans = []
    start = 0
    for end, resume in [*((match.start(), match.end()) for match in _SENTENCE_END.finditer(text)), (len(text),) * 2]:
        piece = text[start:end]
        stripped = piece.strip()
        if len(stripped) >= MIN_CHARACTERS:
            first = start + len(piece) - len(piece.lstrip())
            spans.append((first, first + len(stripped)))
        start = resume
    return tuple(spans)
