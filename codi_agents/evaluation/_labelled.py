"""Labelled faithfulness data for measuring and calibrating the critic, one JSON object per line.

The format is that of `faithfulness_begin_200.jsonl`: `{id, knowledge, history: [str], response,
label: faithful|unfaithful, source?, meta?}`. `knowledge` is one passage or a list of them;
`history` is the conversation before the response, oldest first, its last message the user's.
Malformed lines are reported with their line number and skipped, never fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from codi_agents.errors import UserError

Label = Literal["faithful", "unfaithful"]


class LabelledItem(BaseModel):
    """One response labelled by people as faithful to its knowledge, or not."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, description="Unique id of the item.")
    knowledge: list[str] = Field(min_length=1, description="The passage(s) the response should rest on.")
    history: list[str] = Field(default_factory=list, description="Earlier messages, oldest first; last is the user's.")
    response: str = Field(min_length=1, description="The assistant turn under judgement.")
    label: Label = Field(description="The human judgement.")
    source: str | None = Field(default=None, description="Where the item comes from.")
    meta: dict[str, Any] = Field(default_factory=dict, description="Anything else, e.g. `data_source`.")

    @field_validator("knowledge", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("knowledge")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        if not any(text.strip() for text in value):
            raise ValueError("knowledge is empty")
        return [text for text in value if text.strip()]

    @property
    def group(self) -> str:
        """The per-source breakdown key: `source/meta.data_source`, whichever exist, or `unknown`."""
        parts = [str(part) for part in (self.source, self.meta.get("data_source")) if part]
        return "/".join(dict.fromkeys(parts)) or "unknown"

    @property
    def unfaithful(self) -> bool:
        """True when people judged the response unfaithful."""
        return self.label == "unfaithful"


@dataclass(frozen=True)
class BadLine:
    """A line of the input that could not be used, and why."""

    line: int
    error: str


def read_labelled(path: Path) -> tuple[list[LabelledItem], list[BadLine]]:
    """The usable items of a JSONL file, and the malformed lines (1-based numbers) that were skipped."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError as exc:
        raise UserError(f"Labelled file not found: {path}. Give a JSONL file of labelled items.") from exc
    except OSError as exc:
        raise UserError(f"Labelled file {path} cannot be read: {exc}") from exc
    items: list[LabelledItem] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = LabelledItem.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            bad.append(BadLine(number, f"not JSON ({exc.msg} at column {exc.colno})"))
            continue
        except ValidationError as exc:
            bad.append(BadLine(number, _describe(exc)))
            continue
        if item.id in seen:
            bad.append(BadLine(number, f"duplicate id {item.id!r}"))
            continue
        seen.add(item.id)
        items.append(item)
    return items, bad


def _describe(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "line"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)
