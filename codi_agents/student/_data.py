"""Training rows for `codi train`: a run directory (exported first), an export folder, or a JSONL file of
`{"messages": [...]}` rows (the `openai` export format), split into train and validation by document.

A row's document is its `doc_id` when it has one (the `hf` export), else the first line of its system
message (the exported system prompt names the document's title), else its whole system message.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codi_agents.errors import UserError

SPLIT_FILES = ("train.jsonl", "validation.jsonl")


@dataclass
class TrainingRows:
    """Rows of chat messages per split, the documents of each split, and the rows left out."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    documents: dict[str, list[str]]
    dropped: int
    source: str


def read_training_rows(
    source: Path, *, validation_ratio: float = 0.1, seed: int = 0, limit: int | None = None
) -> TrainingRows:
    """Rows from a run directory, an export folder or a JSONL file; see the module docstring."""
    if not source.exists():
        raise UserError(f"{source} does not exist: give a run directory, an export folder or a JSONL file.")
    if source.is_dir() and not any((source / name).is_file() for name in SPLIT_FILES):
        from codi_agents.export import ExportOptions, export_run

        with tempfile.TemporaryDirectory(prefix="codi-train-export-") as folder:
            export_run(source, "openai", Path(folder) / "export", ExportOptions())
            rows, dropped = _read_jsonl(Path(folder) / "export" / "train.jsonl")
    elif source.is_dir():
        rows, dropped = [], 0
        for name in SPLIT_FILES:
            if (source / name).is_file():
                more, bad = _read_jsonl(source / name)
                rows.extend(more)
                dropped += bad
    else:
        rows, dropped = _read_jsonl(source)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise UserError(
            f"{source} has no conversation to train on (rows need `messages` with an assistant turn; "
            f"{dropped} were left out). Check that the run accepted conversations (`codi report`)."
        )
    train, validation, documents = split_by_document(rows, validation_ratio, seed)
    return TrainingRows(train, validation, documents, dropped, str(source))


def document_key(row: dict[str, Any]) -> str:
    """The document a row is about (see the module docstring)."""
    if row.get("doc_id"):
        return str(row["doc_id"])
    system = next((m["content"] for m in row["messages"] if m["role"] == "system"), "")
    first_line = system.split("\n", 1)[0]
    return hashlib.sha256(first_line.encode("utf-8")).hexdigest()[:16]


def split_by_document(
    rows: list[dict[str, Any]], ratio: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[str]]]:
    """Hold out a seeded share of the documents (at least one when ratio > 0 and there are two or more)."""
    keys = sorted({document_key(row) for row in rows})
    random.Random(seed).shuffle(keys)
    held = round(len(keys) * ratio)
    if ratio > 0 and len(keys) >= 2:
        held = min(max(held, 1), len(keys) - 1)
    validation_keys = set(keys[:held])
    train = [row for row in rows if document_key(row) not in validation_keys]
    validation = [row for row in rows if document_key(row) in validation_keys]
    return train, validation, {"train": sorted(set(keys) - validation_keys), "validation": sorted(validation_keys)}


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    dropped = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in row["messages"]]
            except (json.JSONDecodeError, KeyError, TypeError):
                dropped += 1
                continue
            if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
                dropped += 1
                continue
            rows.append({"messages": messages, **({"doc_id": row["doc_id"]} if row.get("doc_id") else {})})
    return rows, dropped
