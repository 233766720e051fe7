"""Human grounded conversations (the shared `conversations_*.jsonl` format) as turns to score a student on.

A line is `{conv_id, domain?, documents: [{doc_id, title, text}], turns: [{role: user|agent, text, meta?}]}`.
Every agent turn that answers a user turn becomes one `ReferenceTurn`: the document, the history
before the user turn, the user turn and the human reply. Rules, from the data:

- Doc2Dial's final agent turn has `text: null` (only its grounding span survives): a counted skip;
- an agent turn right after another agent turn answers no user turn (Doc2Dial's follow-up
  questions, which carry no grounding span): a counted skip, and its text joins the previous
  assistant message in the history of later turns;
- several references: `meta.references` (or QuAC's `meta.answers`), a list of strings, besides `text`;
- unanswerable: the reply is QuAC's `CANNOTANSWER`, or `meta.unanswerable` is true, or the user turn
  before it has an explicitly empty `meta.grounding_span_for_next_agent_turn`. Doc2Dial v1.0.1's
  shared-task format marks none of its turns this way.
- a conversation without a document, or a line that is not valid JSON: every turn of it is skipped,
  counted under its reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from codi_agents.errors import UserError
from codi_agents.inputs._documents import Document

UNANSWERABLE_TEXTS = frozenset({"cannotanswer", "cannot answer"})


class _RawTurn(BaseModel):
    role: Literal["user", "agent", "assistant"]
    text: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class _RawDocument(BaseModel):
    doc_id: str
    title: str | None = None
    text: str


class _RawConversation(BaseModel):
    conv_id: str
    domain: str | None = None
    documents: list[_RawDocument] = Field(default_factory=list)
    turns: list[_RawTurn]


class ReferenceTurn(BaseModel):
    """One agent turn of a human conversation, with what a deployed student would see before it."""

    id: str = Field(description="`conv_id:index` of the agent turn.")
    conv_id: str
    domain: str
    document: Document
    history: list[dict[str, str]] = Field(description="Earlier turns as chat messages (user/assistant).")
    question: str = Field(description="The user turn this agent turn answers.")
    references: list[str]
    unanswerable: bool = False
    position: Literal["first", "later"] = Field(description="First exchange, or one that has history.")


class ReferenceSet(BaseModel):
    """The turns to score, and how many agent turns were skipped for which reason."""

    turns: list[ReferenceTurn]
    skipped: dict[str, int]
    conversations: int


def read_reference_turns(path: Path | str, *, limit_conversations: int | None = None) -> ReferenceSet:
    """Read a conversations file; bad lines and unusable turns are counted, never fatal."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Conversations file not found: {path}. Give a JSONL file of human conversations.")
    turns: list[ReferenceTurn] = []
    skipped: Counter[str] = Counter()
    conversations = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            if limit_conversations is not None and conversations >= limit_conversations:
                break
            conversations += 1
            try:
                raw = _RawConversation.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError):
                skipped["invalid line"] += 1
                continue
            for item in _conversation_turns(raw, skipped):
                turns.append(item)
    if conversations == 0:
        raise UserError(f"{path} holds no conversations.")
    return ReferenceSet(turns=turns, skipped=dict(skipped), conversations=conversations)


def _conversation_turns(raw: _RawConversation, skipped: Counter[str]) -> Iterator[ReferenceTurn]:
    agent_turns = sum(1 for turn in raw.turns if turn.role != "user")
    if not raw.documents or not raw.documents[0].text.strip():
        skipped["no document"] += agent_turns
        return
    source = raw.documents[0]
    document = Document(id=source.doc_id, title=source.title or "", text=source.text)
    history: list[dict[str, str]] = []
    for index, turn in enumerate(raw.turns):
        role = "user" if turn.role == "user" else "assistant"
        previous = raw.turns[index - 1] if index else None
        if role == "assistant":
            if previous is None or previous.role != "user":
                skipped["agent turn answering no user turn"] += 1
            elif turn.text is None or not turn.text.strip():
                skipped["no human reply text"] += 1
            else:
                yield ReferenceTurn(
                    id=f"{raw.conv_id}:{index}",
                    conv_id=raw.conv_id,
                    domain=raw.domain or "unknown",
                    document=document,
                    history=history[:-1],
                    question=history[-1]["content"],
                    references=_references(turn),
                    unanswerable=_unanswerable(turn, previous),
                    position="first" if len(history) <= 1 else "later",
                )
        text = turn.text or ""
        if history and history[-1]["role"] == role:
            history[-1] = {"role": role, "content": f"{history[-1]['content']} {text}".strip()}
        else:
            history.append({"role": role, "content": text})


def _references(turn: _RawTurn) -> list[str]:
    extra = turn.meta.get("references") or turn.meta.get("answers") or []
    texts = [turn.text or "", *(str(item) for item in extra if isinstance(item, str))]
    return list(dict.fromkeys(text for text in texts if text.strip()))


def _unanswerable(turn: _RawTurn, previous: _RawTurn) -> bool:
    if (turn.text or "").strip().lower() in UNANSWERABLE_TEXTS or turn.meta.get("unanswerable") is True:
        return True
    span = previous.meta.get("grounding_span_for_next_agent_turn")
    return isinstance(span, list) and not span
