"""`codi eval-student`: score a student model's replies against human grounded conversations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from codi_agents.cli._common import (
    ApiKeyOption,
    BaseUrlOption,
    ConfigOption,
    ModelOption,
    command_redactor,
    endpoint_flags,
)
from codi_agents.config._resolve import resolve_settings
from codi_agents.student import GroupScore, eval_student, summarize, summary_document, summary_figure, write_plot
from codi_agents.student._eval import EvalOutcome

_CAPTION = (
    "F1 / recall / EM: SQuAD-normalised token overlap with the human reply (max over references), x100; BLEU: "
    "SacreBLEU corpus BLEU of the answerable turns; abst: share of replies that abstain; an unanswerable turn "
    "counts as right only if the reply abstains. Later turns have history."
)


def eval_student_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="`embedded` (codi's llama.cpp model), `endpoint` (--base-url/--model or the config), an http(s) "
            "URL, `smollm2` (the embedded GGUF with transformers), a .gguf file, a Hugging Face model directory, "
            "or a `codi train` output."
        ),
    ],
    on: Annotated[Path, typer.Option("--on", help="Human conversations JSONL (documents + user/agent turns).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Results JSONL, written as turns are scored; a rerun resumes it.")
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the summary as JSON here.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a plot here (.html, or .png with kaleido).")
    ] = None,
    limit_conversations: Annotated[
        int | None, typer.Option("--limit-conversations", min=1, help="Only the first N conversations.")
    ] = None,
    limit_turns: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N agent turns.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Most tokens per reply.")] = 96,
    adapter: Annotated[str | None, typer.Option("--adapter", help="LoRA adapter directory over MODEL.")] = None,
    config: ConfigOption = None,
    base_url: BaseUrlOption = None,
    endpoint_model: ModelOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Give the student what a deployed model gets (retrieved passages, history, the user's turn), and
    score its reply against the human one: overall, by turn position and by domain."""
    console = Console()
    redactor = command_redactor(ctx)
    redactor.add(api_key)
    settings = resolve_settings(flags={"endpoint": endpoint_flags(base_url, endpoint_model, api_key)}, config=config)
    redactor.add_settings(settings)
    with Progress(
        TextColumn("scoring turns"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("turns", total=None)
        outcome = eval_student(
            model,
            on,
            out,
            settings,
            limit_conversations=limit_conversations,
            limit_turns=limit_turns,
            max_new_tokens=max_new_tokens,
            adapter=adapter,
            on_start=lambda total: progress.update(task, total=total),
            on_result=lambda _: progress.advance(task),
        )
        progress.update(task, completed=len(outcome.results) + len(outcome.failed))
    rows = summarize(outcome.results)
    print_summary(outcome, rows, console)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary_document(outcome, out), indent=2), encoding="utf-8")
        console.print(f"wrote {json_out}")
    if plot is not None:
        write_plot([summary_figure(rows, f"{model} on {on.name}")], plot)
        console.print(f"wrote {plot}")


def _cell(value: float | None, scale: float = 100.0) -> str:
    return "–" if value is None else f"{value * scale:.1f}"


def print_summary(outcome: EvalOutcome, rows: list[GroupScore], console: Console, title: str | None = None) -> None:
    """The groups as a table, then skips and failures."""
    described = outcome.header["model"]
    table = Table(title=title or f"student {described.get('model') or described.get('path')}", caption=_CAPTION)
    for name in ("group", "turns", "F1", "recall", "EM", "BLEU", "abst", "unans.", "empty", "looping"):
        table.add_column(name, justify="left" if name == "group" else "right", no_wrap=name == "group")
    for row in rows:
        table.add_row(
            row.group,
            str(row.turns),
            _cell(row.f1),
            _cell(row.recall),
            _cell(row.em),
            _cell(row.bleu, 1.0),
            _cell(row.abstained),
            str(row.unanswerable),
            str(row.empty),
            str(row.looping),
        )
    console.print(table)
    if outcome.resumed:
        console.print(f"{outcome.resumed} turns were already scored in this results file (resumed).")
    for reason, count in sorted(outcome.skipped.items()):
        console.print(f"[yellow]skipped {count} agent turns:[/] {reason}", highlight=False)
    if outcome.failed:
        console.print(
            f"[red]{len(outcome.failed)} turns failed[/] (not written; a rerun retries them), e.g. "
            f"{next(iter(outcome.failed.values()))}",
            highlight=False,
        )
