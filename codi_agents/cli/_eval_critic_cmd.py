"""`codi eval-critic`: measure the critic against human faithfulness labels, and optionally fit its calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
from codi_agents.config._settings import Settings
from codi_agents.critic._calibration import Calibration, load_calibration
from codi_agents.evaluation._evaluate import EvaluationReport, evaluate_file
from codi_agents.evaluation._metrics import Metrics


def eval_critic_command(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Labelled JSONL: {id, knowledge, history, response, label: faithful|unfaithful}.")
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Evaluate only the first N items.")] = None,
    calibration_file: Annotated[
        Path | None, typer.Option("--calibration", help="Calibration TOML to use instead of the shipped one.")
    ] = None,
    judge_weight: Annotated[
        float | None,
        typer.Option("--judge-weight", min=0, max=1, help="Weight of the LLM judge; 0 skips it (signals only)."),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Items judged at a time.")] = 1,
    fit: Annotated[
        Path | None,
        typer.Option("--fit", help="Fit a calibration on part of FILE, write it here, then evaluate with it."),
    ] = None,
    fit_version: Annotated[str | None, typer.Option("--fit-version", help="Version of the fitted calibration.")] = None,
    fit_fraction: Annotated[
        float, typer.Option("--fit-fraction", min=0.05, max=1.0, help="Share of each source and label fitted on.")
    ] = 0.5,
    fit_seed: Annotated[int, typer.Option("--fit-seed", help="Seed of the fitted/held-out split.")] = 0,
    task: Annotated[str | None, typer.Option("--task", help="Conversational task whose critic is measured.")] = None,
    config: ConfigOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Measure the critic on labelled responses: balanced accuracy, precision and recall for catching
    unfaithful ones, the confusion matrix, a per-source breakdown and the median time per item."""
    console = Console()
    redactor = command_redactor(ctx)
    redactor.add(api_key)
    flags = {"judge_weight": judge_weight, "task": task, "endpoint": endpoint_flags(base_url, model, api_key)}
    settings = resolve_settings(flags=flags, config=config)
    redactor.add_settings(settings)
    calibration = load_calibration(calibration_file or settings.critic_calibration)
    if fit is not None:
        calibration = _fit(console, file, fit, fit_version, fit_fraction, fit_seed, calibration, settings)
    with console.status(f"judging the items of {file}..."):
        report = evaluate_file(file, settings, calibration=calibration, limit=limit, concurrency=concurrency)
    print_report(report, console)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
        console.print(f"wrote {json_out}")


_CAPTION = (
    "bal.acc: mean of recall and specificity; prec: share of rejections that were unfaithful; recall: share of "
    "unfaithful rejected; spec: share of faithful accepted. 'checker alone': the faithfulness cross-encoder at its "
    "own threshold, without the other signals. Rows after the parts are sources."
)


def print_report(report: EvaluationReport, console: Console) -> None:
    """The report as tables: setup, metrics per part and source, confusion matrix, rejections, skipped lines."""
    for bad in report.skipped:
        console.print(f"[yellow]line {bad.line} skipped:[/] {bad.error}", highlight=False)
    console.print(
        f"critic: {report.critic}, judge weight {report.judge_weight:.2f}, calibration {report.calibration}; "
        f"{len(report.results)} items, {len(report.skipped)} lines skipped",
        highlight=False,
    )
    table = Table(title="Catching unfaithful responses (positive: unfaithful, rejected)", caption=_CAPTION)
    table.add_column("part", no_wrap=True)
    for column in ("items", "bal.acc", "prec", "recall", "spec", "TP", "FP", "TN", "FN"):
        table.add_column(column, justify="right", no_wrap=True)
    rows: list[tuple[str, Metrics | None]] = [
        ("all", report.overall),
        ("held out", report.held_out),
        ("fitted on", report.fitted),
        ("checker alone", report.checker),
        *((group, metrics) for group, metrics in report.by_group.items()),
    ]
    for name, metrics in rows:
        if metrics is None:
            continue
        table.add_row(
            name,
            str(metrics.items),
            f"{metrics.balanced_accuracy:.3f}",
            f"{metrics.precision:.3f}",
            f"{metrics.recall:.3f}",
            f"{metrics.specificity:.3f}",
            str(metrics.true_positives),
            str(metrics.false_positives),
            str(metrics.true_negatives),
            str(metrics.false_negatives),
        )
    console.print(table)
    overall = report.overall
    matrix = Table(title="Confusion matrix (all items)")
    matrix.add_column("labelled \\ critic")
    matrix.add_column("rejected", justify="right")
    matrix.add_column("accepted", justify="right")
    matrix.add_row("unfaithful", str(overall.true_positives), str(overall.false_negatives))
    matrix.add_row("faithful", str(overall.false_positives), str(overall.true_negatives))
    console.print(matrix)
    reasons = ", ".join(f"{name} {count}" for name, count in report.rejections.items())
    console.print(f"decisions: {reasons}", highlight=False)
    console.print(f"median time per item: {report.median_ms:.1f} ms", highlight=False)


def _fit(
    console: Console,
    file: Path,
    out: Path,
    version: str | None,
    fraction: float,
    seed: int,
    base: Calibration,
    settings: Settings,
) -> Calibration:
    from codi_agents.evaluation._fit import fit_calibration, write_calibration
    from codi_agents.evaluation._labelled import read_labelled
    from codi_agents.retrieval._embeddings import default_embedding_function
    from codi_agents.tasks import get_task

    items, skipped = read_labelled(file)
    for bad in skipped:
        console.print(f"[yellow]line {bad.line} skipped:[/] {bad.error}", highlight=False)
    with console.status(f"fitting a calibration on {fraction:.0%} of {file}..."):
        result = fit_calibration(
            items,
            base=base,
            task=get_task(settings.task),
            embed=default_embedding_function(settings),
            version=version or f"{base.version}-fit",
            fraction=fraction,
            seed=seed,
            source_name=file.name,
        )
    write_calibration(
        result.calibration,
        out,
        comment=(
            f"Critic calibration written by `codi eval-critic {file.name} --fit`\n"
            "(see codi_agents/evaluation/_fit.py).\n"
            "Fitted: intercept, weights, threshold, fit_items. Kept from the calibration it started from:\n"
            "the judge weights and the answerability thresholds."
        ),
    )
    console.print(
        f"fitted calibration {result.calibration.version} on {len(result.fitted_ids)} items "
        f"(threshold {result.calibration.threshold:.3f}); wrote {out}",
        highlight=False,
    )
    return result.calibration
