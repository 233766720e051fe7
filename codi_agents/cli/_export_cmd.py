"""`codi export`: a run directory to a training-ready dataset (OpenAI JSONL, ShareGPT, Hugging Face, DPO pairs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from codi_agents.cli._common import command_redactor
from codi_agents.export import ExportFormat, ExportOptions, export_run


def export_command(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="The --out directory of a `codi run`.")],
    format: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="openai | sharegpt | hf (datasets, + Parquet) | preference (DPO pairs)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the dataset into.")],
    validation_ratio: Annotated[
        float, typer.Option("--validation-ratio", min=0.0, max=0.95, help="Share of documents held out for validation.")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/validation split by document.")] = 0,
    keep_near_duplicates: Annotated[
        bool, typer.Option("--keep-near-duplicates", help="Keep conversations the run flagged near_duplicate.")
    ] = False,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score", min=0.0, max=1.0, help="Keep conversations whose lowest turn score is this or more."
        ),
    ] = None,
    max_passages: Annotated[
        int | None, typer.Option("--max-passages", min=1, help="Most passages in each system prompt.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier export in --out.")] = False,
) -> None:
    """Export the accepted conversations of a run as a dataset a trainer reads as it is."""
    console = Console()
    options = ExportOptions(
        validation_ratio=validation_ratio,
        seed=seed,
        drop_near_duplicates=not keep_near_duplicates,
        min_score=min_score,
        max_passages=max_passages,
    )
    with console.status(f"exporting {run_dir} as {format}..."):
        result = export_run(run_dir, format, out, options, overwrite=overwrite, secrets=command_redactor(ctx).secrets)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    table = Table(title=f"{format} export of {run_dir}")
    table.add_column("split")
    table.add_column("pairs" if format == "preference" else "conversations", justify="right")
    table.add_column("documents", justify="right")
    for split, rows in result.rows.items():
        table.add_row(split, f"{rows:,}", f"{result.documents.get(split, 0):,}")
    console.print(table)
    counts = result.counts
    console.print(
        f"{counts.seen:,} accepted in the run; left out: {counts.near_duplicate:,} near-duplicates, "
        f"{counts.below_min_score:,} below the minimum score.",
        highlight=False,
    )
    console.print(f"wrote {out}", highlight=False, soft_wrap=True)
