"""`codi run`: turn a corpus into a dataset of conversations; resumable, with progress and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from codi_agents.batch._api import iter_conversations
from codi_agents.batch._index_choice import preview
from codi_agents.batch._progress import progress_for
from codi_agents.batch._runner import BatchRun
from codi_agents.batch._summary import summary_tables
from codi_agents.cli._common import (
    ApiKeyOption,
    BaseUrlOption,
    CalibrationOption,
    ConfigOption,
    ModelOption,
    command_redactor,
    endpoint_flags,
)
from codi_agents.config._run_config import load_run_config
from codi_agents.config._settings import UserMode
from codi_agents.errors import RunError
from codi_agents.rundir._layout import ERRORS_FILE, RunLayout


def run_command(
    ctx: typer.Context,
    corpus: Annotated[
        str,
        typer.Argument(
            help="A .jsonl file of {id, title, text}, a folder of .txt/.md/.html/.pdf, a glob, Parquet shards "
            "(a file, folder or glob) or a Hugging Face dataset saved with save_to_disk."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run directory: records, manifest, summary, index.")],
    config: ConfigOption = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Conversations in all (overrides the config).")] = None,
    per_document: Annotated[
        int | None, typer.Option("--per-document", min=1, help="Conversations per document, instead of --n.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-k", min=1, help="Conversations in flight (default 16).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the plan (overrides the config).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue the run in --out, skipping what is done.")
    ] = True,
    force: Annotated[
        bool,
        typer.Option("--force", help="Resume although the config changed; with --no-resume, delete the old run first."),
    ] = False,
    drop_near_duplicates: Annotated[
        bool, typer.Option("--drop-near-duplicates", help="Move near-duplicate conversations to rejected.jsonl.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan (how many conversations, which ids) and stop.")
    ] = False,
    task: Annotated[str | None, typer.Option("--task", help="Conversational task (see `codi tasks`).")] = None,
    user_mode: Annotated[
        UserMode | None,
        typer.Option("--user-mode", help="reader: the user sees the document; seeker: only its opening."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Simulate in N Ray worker processes (local, or RAY_ADDRESS's cluster)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Join this Ray cluster: host:port, ray://host:10001, or auto."),
    ] = None,
    worker_cpus: Annotated[
        float | None, typer.Option("--worker-cpus", min=0.01, help="CPUs Ray reserves per worker (default 1).")
    ] = None,
    worker_memory: Annotated[
        str | None, typer.Option("--worker-memory", help="Memory Ray reserves per worker, e.g. 2GB.")
    ] = None,
    corpus_id_column: Annotated[
        str | None, typer.Option("--corpus-id-column", help="Id column of a Parquet/Hugging Face corpus (id).")
    ] = None,
    corpus_text_column: Annotated[
        str | None, typer.Option("--corpus-text-column", help="Text column of a Parquet/Hugging Face corpus (text).")
    ] = None,
    corpus_title_column: Annotated[
        str | None, typer.Option("--corpus-title-column", help="Title column of a Parquet/Hugging Face corpus.")
    ] = None,
    corpus_split: Annotated[
        str | None, typer.Option("--corpus-split", help="Split of a saved Hugging Face DatasetDict, e.g. train.")
    ] = None,
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            help="Folder of the shared passage index cache (default $CODI_CACHE_DIR/index or ~/.cache/codi/index), "
            "or `run` for a private index in --out.",
        ),
    ] = None,
    calibration: CalibrationOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Simulate conversations about every document of CORPUS; write them to --out as they finish."""
    redactor = command_redactor(ctx)
    redactor.add(api_key)
    dedup: dict[str, Any] | None = {"drop": "conversations"} if drop_near_duplicates else None
    run_config = load_run_config(
        config, n=n, per_document=per_document, concurrency=concurrency, seed=seed, dedup=dedup,
        workers=workers, ray_address=ray_address, worker_cpus=worker_cpus, worker_memory=worker_memory,
        corpus_id_column=corpus_id_column, corpus_text_column=corpus_text_column,
        corpus_title_column=corpus_title_column, corpus_split=corpus_split, index=index,
    )  # fmt: skip
    err = Console(stderr=True)
    batch = iter_conversations(
        corpus,
        out,
        config=run_config,
        resume=resume,
        force=force,
        progress=progress_for(err, run_config.limits.progress_seconds),
        secrets=redactor.secrets,
        endpoint=endpoint_flags(base_url, model, api_key),
        task=task,
        user_mode=user_mode,
        critic_calibration=str(calibration) if calibration else None,
    )
    redactor.add_settings(batch.settings)
    if dry_run:
        _show_plan(batch, Console(), out)
        return
    try:
        with _log_to(err):
            asyncio.run(_drain(batch))
    finally:
        if batch.summary is not None:
            console = Console()
            for table in summary_tables(batch.summary):
                console.print(table)
            console.print(f"records in {out}/accepted.jsonl and rejected.jsonl; statistics in {out}/summary.json")
    summary = batch.summary or {}
    if summary.get("status") == "incomplete":
        failed = summary["errors"]
        raise RunError(
            f"{failed} conversation{'s' if failed != 1 else ''} failed on server errors and "
            f"{'were' if failed != 1 else 'was'} not written (see {out / ERRORS_FILE}); "
            "run the same command again to retry them."
        )


@contextlib.contextmanager
def _log_to(console: Console) -> Iterator[None]:
    """Show the run's warnings (skipped files, failed conversations) on `console`, above the progress display."""
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False, rich_tracebacks=False)
    logger = logging.getLogger("codi_agents.batch")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


async def _drain(batch: BatchRun) -> None:
    async with batch:
        async for _ in batch:
            pass


def _show_plan(batch: BatchRun, console: Console, out: Path) -> None:
    """What the run would do: counts per persona and flow, the documents, the first ids, where workers go."""
    from collections import Counter

    from rich.table import Table

    plan = batch.make_plan()
    corpus = batch.corpus
    assert corpus is not None
    personas: Counter[str] = Counter()
    flows: Counter[str] = Counter()
    table = Table(title=f"plan: {len(plan)} conversations over {len(plan.documents)} documents (first 10)")
    for column in ("#", "id", "document", "persona", "flow", "seed"):
        table.add_column(column)
    for item in plan:
        personas[item.persona.name] += 1
        flows[item.flow.name] += 1
        if item.number < 10:
            table.add_row(
                str(item.number), item.id, item.document.id, item.persona.name, item.flow.name, str(item.seed)
            )
    console.print(table)
    console.print("personas: " + ", ".join(f"{name} {count}" for name, count in personas.most_common()))
    console.print("flows: " + ", ".join(f"{name} {count}" for name, count in flows.most_common()))
    skipped = f"{len(corpus.skipped)} skipped" + (f" (e.g. {corpus.skipped[0].source})" if corpus.skipped else "")
    console.print(f"documents: {len(corpus.documents)} used, {skipped}, {len(corpus.duplicates)} exact duplicates")
    assert batch.session is not None
    index = preview(batch.config.index, batch.session, RunLayout(out))
    if batch.config.distributed:
        from codi_agents.batch._cluster_run import placement

        console.print(placement(batch.config, batch.settings, index))
    else:
        console.print(f"passage index: {index}")
