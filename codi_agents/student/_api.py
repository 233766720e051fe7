"""The two entry points the CLI and the bench share: `eval_student` and `train`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents.config._settings import Settings
from codi_agents.student._backends import DEFAULT_MAX_NEW_TOKENS, StudentModel, open_student
from codi_agents.student._data import read_training_rows
from codi_agents.student._eval import EvalOutcome, TurnResult, evaluate_student
from codi_agents.student._prompt import StudentPrompter
from codi_agents.student._references import read_reference_turns
from codi_agents.student._train import TrainOptions, TrainResult, train_student


def eval_student(
    model: str | StudentModel,
    on: Path,
    out: Path,
    settings: Settings | None = None,
    *,
    limit_conversations: int | None = None,
    limit_turns: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    adapter: str | None = None,
    embedding_function: EmbeddingFunction[Documents] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[TurnResult | None], None] | None = None,
) -> EvalOutcome:
    """Score MODEL (a name `open_student` knows, or a `StudentModel`) on the human turns of `on`,
    writing results to `out` as they are made; a rerun with the same `out` resumes."""
    settings = settings or Settings()
    references = read_reference_turns(on, limit_conversations=limit_conversations)
    if limit_turns is not None:
        references.turns = references.turns[:limit_turns]
    student = (
        open_student(model, settings, max_new_tokens=max_new_tokens, adapter=adapter)
        if isinstance(model, str)
        else model
    )
    prompter = StudentPrompter(settings, embedding_function)
    try:
        if on_start:
            on_start(len(references.turns))
        return evaluate_student(references, student, prompter, out, source=str(on), on_result=on_result)
    finally:
        prompter.close()
        if isinstance(model, str):
            student.close()


def train(
    source: Path,
    out: Path,
    options: TrainOptions | None = None,
    *,
    validation_ratio: float = 0.1,
    limit: int | None = None,
) -> TrainResult:
    """Fine-tune a student on a run directory, an export folder or a messages JSONL file."""
    options = options or TrainOptions()
    rows = read_training_rows(source, validation_ratio=validation_ratio, seed=options.seed, limit=limit)
    return train_student(rows, out, options)
