"""Which conversations go into an export, and into which split.

Filters: accepted only, no near-duplicates, a minimum critic score. The split is by document, so
no document is in both train and validation (a model must not be validated on documents it was
trained on); it is deterministic for a seed and does not depend on the order of the run files.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from codi_agents._record import Conversation

Split = Literal["train", "validation"]
NEAR_DUPLICATE = "near_duplicate"


class ExportOptions(BaseModel):
    """How to select and shape the exported conversations."""

    validation_ratio: float = Field(default=0.0, ge=0.0, lt=1.0, description="Share of documents held out.")
    seed: int = Field(default=0, description="Seed of the document split.")
    drop_near_duplicates: bool = Field(default=True, description="Leave out conversations flagged near_duplicate.")
    min_score: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Keep conversations whose lowest assistant-turn score is at least this.",
    )
    max_passages: int | None = Field(default=None, ge=1, description="Most passages in the system prompt.")


def conversation_score(conversation: Conversation) -> float | None:
    """The conversation's critic score: the lowest score of its assistant turns (None if none was judged)."""
    scores = [turn.verdict.score for turn in conversation.turns if turn.verdict is not None]
    return min(scores) if scores else None


@dataclass
class SelectionCounts:
    """What the filters kept and why the rest was left out."""

    seen: int = 0
    kept: int = 0
    not_accepted: int = 0
    near_duplicate: int = 0
    below_min_score: int = 0
    per_split: dict[str, int] = field(default_factory=dict)


def keep_reason(conversation: Conversation, options: ExportOptions) -> str | None:
    """None if the conversation passes the filters, else the counter it falls under."""
    if not conversation.accepted:
        return "not_accepted"
    if options.drop_near_duplicates and NEAR_DUPLICATE in conversation.flags:
        return "near_duplicate"
    if options.min_score is not None:
        score = conversation_score(conversation)
        if score is None or score < options.min_score:
            return "below_min_score"
    return None


def split_documents(doc_ids: Iterable[str], validation_ratio: float, seed: int) -> dict[str, Split]:
    """Assign each document to a split: the `round(ratio * n)` documents with the smallest seeded hash go to
    validation (at least one when the ratio is positive and there are two documents or more, never all)."""
    unique = sorted(set(doc_ids))
    if validation_ratio <= 0 or len(unique) < 2:
        return dict.fromkeys(unique, "train")
    held_out = min(len(unique) - 1, max(1, math.floor(validation_ratio * len(unique) + 0.5)))
    ranked = sorted(unique, key=lambda doc_id: (_seeded_hash(doc_id, seed), doc_id))
    validation = set(ranked[:held_out])
    return {doc_id: ("validation" if doc_id in validation else "train") for doc_id in unique}


def _seeded_hash(doc_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\x00{doc_id}".encode("utf-8", errors="surrogatepass")).hexdigest()
