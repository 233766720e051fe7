"""Stable ids and digests: the same inputs always give the same id, on any machine and in any process.

Pure functions with no dependency on a session, so the batch planner, the session and the run
manifest compute ids the same way without importing each other.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol


class JsonDumpable(Protocol):
    """What an id is made from: a pydantic model (a persona, a flow), dumped as JSON-ready data."""

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


CONVERSATION_ID_LENGTH = 20
"""Hex digits of a conversation id."""


def stable_hash(value: Any, length: int = 16) -> str:
    """A hex digest of a JSON-serialisable value, independent of dict order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def conversation_id(
    task: str, doc_id: str, persona: JsonDumpable, flow: JsonDumpable, seed: int, fingerprint: str
) -> str:
    """Deterministic id: the same inputs and output-shaping settings always give the same id."""
    return stable_hash(
        {
            "task": task,
            "doc": doc_id,
            "persona": persona.model_dump(mode="json"),
            "flow": flow.model_dump(mode="json"),
            "seed": seed,
            "settings": fingerprint,
        },
        length=CONVERSATION_ID_LENGTH,
    )
