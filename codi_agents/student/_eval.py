"""Run a student over human reference turns, scoring and writing each result as soon as it is made.

The results file is JSON Lines: a header (the model, the fixed prompt, the conversations file),
then one line per scored turn. A rerun with the same model and prompt skips the turns already
in the file, so an interrupted evaluation resumes where it stopped; a torn last line is dropped.
A turn whose model call fails is not written (a rerun retries it); `max_failures` failures in a
row stop the evaluation with the results so far kept.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codi_agents._version import __version__
from codi_agents.errors import RunError, UserError
from codi_agents.student._backends import StudentModel
from codi_agents.student._prompt import StudentPrompter
from codi_agents.student._references import ReferenceSet
from codi_agents.student._scoring import score_reply

LOOP_NGRAM = 3
LOOP_SHARE = 0.5


class TurnResult(BaseModel):
    """One scored reply."""

    id: str
    conv_id: str
    domain: str
    position: str
    unanswerable: bool
    question: str
    references: list[str]
    reply: str
    passage_ids: list[str]
    f1: float
    em: float
    recall: float
    abstained: bool
    flags: list[str]
    seconds: float


@dataclass
class EvalOutcome:
    """What an evaluation produced: every result in the file (resumed ones included) and the counts."""

    header: dict[str, Any]
    results: list[TurnResult]
    skipped: dict[str, int]
    failed: dict[str, str] = field(default_factory=dict)
    resumed: int = 0


def looping(reply: str) -> bool:
    """True when one word trigram makes up at least half of a reply of 12+ words (a degenerate loop)."""
    words = reply.lower().split()
    if len(words) < 12:
        return False
    grams = [tuple(words[i : i + LOOP_NGRAM]) for i in range(len(words) - LOOP_NGRAM + 1)]
    top = max(grams.count(gram) for gram in set(grams))
    return top * LOOP_NGRAM >= LOOP_SHARE * len(words)


def evaluate_student(
    references: ReferenceSet,
    student: StudentModel,
    prompter: StudentPrompter,
    out: Path,
    *,
    source: str,
    max_failures: int = 5,
    on_result: Callable[[TurnResult | None], None] | None = None,
) -> EvalOutcome:
    """Score every reference turn not yet in `out`; see the module docstring for resume and failures."""
    header = {"kind": "header", "model": student.describe(), "prompt": prompter.describe(), "conversations": source}
    done = _resume(out, header)
    outcome = EvalOutcome(header={**header, "codi_version": __version__}, results=[], skipped=dict(references.skipped))
    wanted = {turn.id for turn in references.turns}
    outcome.results = [result for result in done.values() if result.id in wanted]
    outcome.resumed = len(outcome.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    failures_in_row = 0
    with out.open("a", encoding="utf-8") as handle:
        if not done and out.stat().st_size == 0:
            handle.write(json.dumps(outcome.header) + "\n")
        for turn in references.turns:
            if turn.id in done:
                continue
            messages, passage_ids = prompter.messages(turn)
            started = time.perf_counter()
            try:
                reply = student.reply(messages)
            except Exception as exc:
                outcome.failed[turn.id] = f"{type(exc).__name__}: {exc}"[:300]
                failures_in_row += 1
                if failures_in_row >= max_failures:
                    raise RunError(
                        f"The model failed {failures_in_row} turns in a row (last: {outcome.failed[turn.id]}). "
                        f"The {len(outcome.results)} results so far are in {out}; fix the model and rerun to resume."
                    ) from exc
                if on_result:
                    on_result(None)
                continue
            failures_in_row = 0
            score = score_reply(reply, turn.references, unanswerable=turn.unanswerable)
            flags = [name for name, hit in (("empty", not reply.strip()), ("looping", looping(reply))) if hit]
            result = TurnResult(
                id=turn.id,
                conv_id=turn.conv_id,
                domain=turn.domain,
                position=turn.position,
                unanswerable=turn.unanswerable,
                question=turn.question,
                references=turn.references,
                reply=reply,
                passage_ids=passage_ids,
                f1=score.f1,
                em=score.em,
                recall=score.recall,
                abstained=score.abstained,
                flags=flags,
                seconds=round(time.perf_counter() - started, 3),
            )
            handle.write(result.model_dump_json() + "\n")
            handle.flush()
            outcome.results.append(result)
            if on_result:
                on_result(result)
    return outcome


def _resume(out: Path, header: dict[str, Any]) -> dict[str, TurnResult]:
    """Results already in `out`, after checking they come from the same model and prompt."""
    if not out.exists() or out.stat().st_size == 0:
        return {}
    text = out.read_text(encoding="utf-8")
    if not text.endswith("\n"):  # a line torn by a crash: drop it, it is redone
        text = text[: text.rfind("\n") + 1]
        out.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    try:
        found = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        found = {}
    if found.get("kind") != "header":
        raise UserError(f"{out} is not a results file of `codi eval-student`; choose another output path.")
    for key in ("model", "prompt", "conversations"):
        if _canonical(found.get(key)) != _canonical(header[key]):
            raise UserError(
                f"{out} holds results of another {key} ({_brief(found.get(key))}); "
                "choose another output path, or delete the file to start over."
            )
    done: dict[str, TurnResult] = {}
    for line in lines[1:]:
        result = TurnResult.model_validate_json(line)
        done[result.id] = result
    return done


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _brief(value: Any) -> str:
    return re.sub(r"\s+", " ", _canonical(value))[:160]
