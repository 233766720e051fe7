"""A deterministic embedding function for tests: hashed bag of words, registered with Chroma.

Texts that share words get similar vectors, so retrieval in tests behaves like lexical search:
good enough to check that a follow-up finds the right passage, with no model and no network.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    """
    a an and are as at be by can do does for from has have how i in is it its of on or that the
    their they this to was were what when where which who why will with you your
    """.split()
)


@register_embedding_function
class HashingEmbeddingFunction(EmbeddingFunction[Documents]):
    """Hashed bag-of-words vectors of `dimensions` floats, L2-normalised."""

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions

    def __call__(self, input: Documents) -> Embeddings:
        return [self._embed(text) for text in input]

    @property
    def dimension(self) -> int:
        """The size of its vectors."""
        return self.dimensions

    def _embed(self, text: str) -> np.ndarray:
        return hashed_vector(text, self.dimensions)

    @staticmethod
    def name() -> str:
        return "codi_hashing"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "l2", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbeddingFunction:
        return HashingEmbeddingFunction(dimensions=int(config.get("dimensions", 256)))

    def get_config(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions}


def hashed_vector(text: str, dimensions: int, salt: str = "") -> np.ndarray:
    """The unit bag-of-words vector of `text`: each word (stopwords aside) adds 1 to a bucket chosen by its hash
    (salted by `salt`, so the fake server's models give different vectors)."""
    vector = np.zeros(dimensions, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        bucket = int.from_bytes(hashlib.blake2b((salt + word).encode(), digest_size=4).digest(), "little")
        vector[bucket % dimensions] += 1.0
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        vector[0] = 1.0
        return vector
    unit: np.ndarray = vector / norm
    return unit
