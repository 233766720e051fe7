"""Cleaning what a model wrote into the text of a turn: no role labels, no quotes, no run-on into the other role."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

MAX_USER_CHARS = 600
MAX_ANSWER_CHARS = 2400
_ROLE_PREFIX = re.compile(
    r"^\s*(\*\*)?(user|me|question|q|my (next )?message|assistant|answer|a|reply)(\*\*)?\s*:\s*", re.I
)
_OTHER_ROLE = re.compile(r"\n\s*(\*\*)?(assistant|user|system|question|answer)(\*\*)?\s*:", re.I)
_INSTRUCTION_ECHO = re.compile(r"^\s*\((your (next|first) message|next turn)[^)]*\)\s*", re.I)


class UserMessage(BaseModel):
    """The user's next message to the assistant."""

    message: str = Field(description="The user's next message, in the user's own words.", max_length=MAX_USER_CHARS)


def clean_turn_text(text: str, *, limit: int) -> str:
    """Strip role labels, wrapping quotes and anything written for the other role; cut at `limit` characters."""
    text = _INSTRUCTION_ECHO.sub("", text.strip())
    text = _ROLE_PREFIX.sub("", text)
    match = _OTHER_ROLE.search(text)
    if match:
        text = text[: match.start()]
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    text = text.strip("“”").strip()
    if len(text) > limit:
        cut = text[:limit]
        end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        text = cut[: end + 1] if end > limit // 2 else cut.rsplit(" ", 1)[0]
    return text


def clean_user_message(text: str) -> str:
    """The user simulator's output as a user turn."""
    return clean_turn_text(text, limit=MAX_USER_CHARS)


def clean_answer(text: str) -> str:
    """The assistant's output as an assistant turn."""
    return clean_turn_text(text, limit=MAX_ANSWER_CHARS)
