"""Unit vectors: every cosine in codi (retrieval, the critic's similarity signals) is a dot product of these."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def unit_rows(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """`vectors` with every row scaled to length 1 (a zero row stays zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    unit: NDArray[np.float32] = array / np.clip(np.linalg.norm(array, axis=1, keepdims=True), 1e-12, None)
    return unit
