"""Training formats: one conversation (or one regenerated turn) to the rows trainers read.

- `openai`: `{"messages": [...]}`, the chat fine-tuning format of OpenAI and most open trainers;
- `sharegpt`: `{"id", "conversations": [{"from": "system"|"human"|"gpt", "value"}]}`;
- `hf`: messages plus metadata columns, with fixed `datasets` features (TRL's conversational format);
- `preference`: TRL's conversational preference format, `prompt` / `chosen` / `rejected`, from the
  critic's rejected attempt and the accepted regeneration of the same turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from codi_agents._record import Conversation
from codi_agents.errors import TaskError
from codi_agents.export._selection import conversation_score
from codi_agents.simulation._prompting import render_passages
from codi_agents.tasks import get_task
from codi_agents.tasks._base import Task

if TYPE_CHECKING:
    from datasets import Features

ExportFormat = Literal["openai", "sharegpt", "hf", "preference"]
FORMATS: tuple[ExportFormat, ...] = ("openai", "sharegpt", "hf", "preference")

SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def export_task(name: str) -> Task:
    """The task a run was made with, for its training prompt; a task that is not installed is named.

    Callers resolve it once per run (from the manifest's or the records' task name) and pass it to
    `training_messages`; with the task in hand, exporting needs no plug-in installed."""
    try:
        return get_task(name)
    except TaskError as exc:
        raise TaskError(
            f"The run was made with the task {name!r}, which is not installed here, and exporting needs its "
            f"training prompt. Install the plug-in that provides {name!r}, or pass the Task itself "
            f"(`export_run(..., task=...)`). {exc}"
        ) from exc


def training_messages(
    conversation: Conversation, task: Task, *, max_passages: int | None = None
) -> list[dict[str, str]]:
    """OpenAI-style chat messages for fine-tuning: `task`'s training system prompt holding the passages, then
    the turns. `max_passages` bounds the passages (see `Conversation.grounding_passages`)."""
    if task.name != conversation.task:
        raise TaskError(
            f"Conversation {conversation.id} was made with the task {conversation.task!r}, not {task.name!r}: "
            "export it with its own task."
        )
    system = task.prompts.training_system.format(
        passages=render_passages(conversation.grounding_passages(max_passages)),
        document_title=conversation.doc_title or conversation.doc_id,
    )
    return [{"role": "system", "content": system}] + [
        {"role": turn.role, "content": turn.content} for turn in conversation.turns
    ]


def openai_record(conversation: Conversation, task: Task, max_passages: int | None = None) -> dict[str, Any]:
    """Chat fine-tuning JSONL line: the system prompt with the passages, then the turns."""
    return {"messages": training_messages(conversation, task, max_passages=max_passages)}


def sharegpt_record(conversation: Conversation, task: Task, max_passages: int | None = None) -> dict[str, Any]:
    """ShareGPT line: the same messages as `from`/`value` pairs."""
    return {
        "id": conversation.id,
        "conversations": [
            {"from": SHAREGPT_ROLES[message["role"]], "value": message["content"]}
            for message in training_messages(conversation, task, max_passages=max_passages)
        ],
    }


def hf_features() -> Features:
    """Column types of the `hf` export; fixed so that empty lists and missing scores keep their types."""
    from datasets import Features, Value

    message = {"role": Value("string"), "content": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "messages": [message],
            "task": Value("string"),
            "doc_id": Value("string"),
            "doc_title": Value("string"),
            "persona": Value("string"),
            "flow": Value("string"),
            "user_mode": Value("string"),
            "path": [Value("string")],
            "links": [Value("string")],
            "links_realised": [Value("bool")],
            "exchanges": Value("int32"),
            "scores": [Value("float64")],
            "min_score": Value("float64"),
            "mean_score": Value("float64"),
            "regenerations": Value("int32"),
            "passage_ids": [Value("string")],
            "flags": [Value("string")],
            "models": [{"role": Value("string"), "model": Value("string")}],
            "seed": Value("int64"),
            "settings_fingerprint": Value("string"),
            "codi_version": Value("string"),
            "created_at": Value("string"),
        }
    )


def hf_row(conversation: Conversation, task: Task, max_passages: int | None = None) -> dict[str, Any]:
    """One row of the `hf` export: TRL's `messages` column plus metadata for filtering and analysis."""
    user_turns = [turn for turn in conversation.turns if turn.role == "user"]
    scores = [turn.verdict.score for turn in conversation.turns if turn.verdict is not None]
    return {
        "id": conversation.id,
        "messages": training_messages(conversation, task, max_passages=max_passages),
        "task": conversation.task,
        "doc_id": conversation.doc_id,
        "doc_title": conversation.doc_title,
        "persona": conversation.persona.name,
        "flow": conversation.flow,
        "user_mode": conversation.user_mode,
        "path": list(conversation.path),
        "links": [turn.link or "" for turn in user_turns],
        "links_realised": [turn.check.link_realised if turn.check else None for turn in user_turns],
        "exchanges": conversation.exchanges,
        "scores": scores,
        "min_score": conversation_score(conversation),
        "mean_score": sum(scores) / len(scores) if scores else None,
        "regenerations": sum(len(turn.rejected_attempts) for turn in conversation.turns),
        "passage_ids": [passage.id for passage in conversation.grounding_passages(max_passages)],
        "flags": list(conversation.flags),
        "models": [{"role": role, "model": model} for role, model in sorted(conversation.models.items())],
        "seed": conversation.seed,
        "settings_fingerprint": conversation.settings_fingerprint,
        "codi_version": conversation.codi_version,
        "created_at": conversation.created_at.isoformat(),
    }


def preference_pairs(
    conversation: Conversation, task: Task, max_passages: int | None = None
) -> Iterator[dict[str, Any]]:
    """One DPO pair per rejected attempt of an accepted assistant turn: same prompt, the accepted
    regeneration as `chosen`, the attempt the critic rejected as `rejected`."""
    if not any(turn.rejected_attempts for turn in conversation.turns):
        return
    messages = training_messages(conversation, task, max_passages=max_passages)
    exchange = 0
    for index, turn in enumerate(conversation.turns):
        if turn.role != "assistant":
            continue
        exchange += 1
        if turn.verdict is None or not turn.verdict.accepted:
            continue
        prompt = messages[: index + 1]  # the system prompt, then every turn up to this turn's user message
        link = conversation.turns[index - 1].link if index > 0 else None
        for attempt_number, attempt in enumerate(turn.rejected_attempts):
            if not attempt.content.strip() or attempt.content.strip() == turn.content.strip():
                continue
            yield {
                "id": f"{conversation.id}:{exchange}:{attempt_number}",
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": turn.content}],
                "rejected": [{"role": "assistant", "content": attempt.content}],
                "conversation_id": conversation.id,
                "doc_id": conversation.doc_id,
                "persona": conversation.persona.name,
                "flow": conversation.flow,
                "link": link,
                "exchange": exchange,
                "rejection": attempt.verdict.rejection,
                "rejected_reasons": attempt.verdict.reasons,
                "chosen_score": turn.verdict.score,
                "rejected_score": attempt.verdict.score,
            }
