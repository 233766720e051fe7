"""Human-written reference conversations, read into the form the report measures.

The format is that of Doc2Dial as shipped in `conversations_doc2dial_50.jsonl`: one dialogue a
line, `{"turns": [{"role": "user" | "agent", "text": ...}, ...], ...}`. Turns with a null or empty
text (Doc2Dial's final agent turn) are left out; `assistant`/`content` are accepted as synonyms,
so a codi run's own records can serve as a reference too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codi_agents.errors import ReferenceDataError
from codi_agents.report._language import Dialogue

USER_ROLES = frozenset({"user", "human"})
ASSISTANT_ROLES = frozenset({"agent", "assistant", "gpt"})
SKIPPED_ROLES = frozenset({"system"})


def read_reference(path: Path | str) -> Iterator[Dialogue]:
    """Dialogues from a reference JSONL file, one a line, streamed; blank lines are skipped.

    A missing file fails here; a bad line fails when it is reached, naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ReferenceDataError(f"Reference file {path} does not exist.")
    return _read(path)


def _read(path: Path) -> Iterator[Dialogue]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        found = False
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ReferenceDataError(f"{path}, line {number}: not valid JSON ({error.msg}).") from error
            found = True
            yield _dialogue(record, f"{path}, line {number}")
    if not found:
        raise ReferenceDataError(f"Reference file {path} holds no conversations.")


def _dialogue(record: Any, where: str) -> Dialogue:
    turns = record.get("turns") if isinstance(record, dict) else None
    if not isinstance(turns, list):
        raise ReferenceDataError(f"{where}: expected an object with a `turns` list, as in Doc2Dial's JSONL.")
    user: list[str] = []
    assistant: list[str] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ReferenceDataError(f"{where}: turn {index} is not an object.")
        role = str(turn.get("role", "")).lower()
        text = turn.get("text", turn.get("content"))
        if role in USER_ROLES:
            target = user
        elif role in ASSISTANT_ROLES:
            target = assistant
        elif role in SKIPPED_ROLES:
            continue
        else:
            raise ReferenceDataError(f"{where}: turn {index} has role {role!r}; expected user or agent (or assistant).")
        if isinstance(text, str) and text.strip():
            target.append(text)
    return Dialogue(user=user, assistant=assistant)
