"""`export_run`: a run directory to a training-ready dataset in one of the supported formats.

Two streaming passes over `accepted.jsonl`: the first finds the documents that survive the filters
(the split is decided per document), the second writes the rows. Memory stays flat however large
the run; the `hf` format goes through Parquet files written in batches.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from codi_agents._record import Conversation
from codi_agents._security import redact
from codi_agents._version import __version__
from codi_agents.errors import ExportError
from codi_agents.export._formats import (
    FORMATS,
    ExportFormat,
    export_task,
    hf_row,
    openai_record,
    preference_pairs,
    sharegpt_record,
)
from codi_agents.export._hf import PARQUET_DIR, write_hf
from codi_agents.export._selection import ExportOptions, SelectionCounts, Split, keep_reason, split_documents
from codi_agents.rundir._reader import RunDirectory
from codi_agents.tasks._base import Task

INFO_FILE = "export_info.json"
_OUTPUT_NAMES = (
    "train.jsonl", "validation.jsonl", INFO_FILE, "dataset_dict.json", "train", "validation", PARQUET_DIR
)  # fmt: skip
"""Everything an export may write into its output directory (and may remove with `overwrite`)."""
_MANIFEST_FIELDS = {"fingerprint", "settings_fingerprint", "codi_version", "models", "task"}
"""Manifest fields copied into `export_info.json`; never the config, which may name credentials."""


@dataclass
class ExportResult:
    """What an export wrote."""

    out: Path
    format: ExportFormat
    rows: dict[str, int]
    """Rows per split (conversations, or preference pairs)."""
    documents: dict[str, int]
    """Documents per split."""
    counts: SelectionCounts
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


RowBuilder = Callable[[Conversation, Task, int | None], Iterable[dict[str, Any]]]

_BUILDERS: dict[ExportFormat, RowBuilder] = {
    "openai": lambda conversation, task, limit: [openai_record(conversation, task, limit)],
    "sharegpt": lambda conversation, task, limit: [sharegpt_record(conversation, task, limit)],
    "hf": lambda conversation, task, limit: [hf_row(conversation, task, limit)],
    "preference": preference_pairs,
}


def export_run(
    run_dir: Path | str,
    format: ExportFormat,
    out: Path | str,
    options: ExportOptions | None = None,
    *,
    overwrite: bool = False,
    secrets: Iterable[str] = (),
    task: Task | None = None,
) -> ExportResult:
    """Write the accepted conversations of `run_dir` to `out` (a directory) in `format`.

    `out` receives `train.jsonl` (and `validation.jsonl` with a validation ratio) or, for `hf`, a
    `datasets.DatasetDict` saved with `save_to_disk`; plus `export_info.json`. `secrets` are masked
    wherever they occur in the output. `task` gives the training prompt; when None, the run's task is
    looked up by name among the installed tasks (a `TaskError` names a missing plug-in).
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    options = options or ExportOptions()
    run = RunDirectory.open(run_dir)
    out = Path(out)
    _prepare_output(out, overwrite)
    secrets = [secret for secret in secrets if secret and len(secret) >= 4]

    counts = SelectionCounts()
    kept_docs: list[str] = []
    task_names: set[str] = set()
    for conversation in run.conversations("accepted"):
        counts.seen += 1
        reason = keep_reason(conversation, options)
        if reason is None:
            counts.kept += 1
            kept_docs.append(conversation.doc_id)
            task_names.add(conversation.task)
        else:
            setattr(counts, reason, getattr(counts, reason) + 1)
    _check_something_to_export(run, counts)
    tasks = {name: task or export_task(name) for name in sorted(task_names)}
    splits = split_documents(kept_docs, options.validation_ratio, options.seed)
    del kept_docs

    def rows() -> Iterator[tuple[Split, dict[str, Any]]]:
        for conversation in run.conversations("accepted"):
            if keep_reason(conversation, options) is not None:
                continue
            assigned = splits[conversation.doc_id]
            for row in _BUILDERS[format](conversation, tasks[conversation.task], options.max_passages):
                yield assigned, _scrub(row, secrets) if secrets else row

    out.mkdir(parents=True, exist_ok=True)
    wanted: list[Split] = ["train", "validation"] if "validation" in splits.values() else ["train"]
    if format == "hf":
        written, files = write_hf(out, wanted, rows())
    else:
        written, files = _write_jsonl(out, wanted, rows())
    if sum(written.values()) == 0:
        _remove_outputs(out)
        raise ExportError(_nothing_written(format, run, counts))
    counts.per_split = dict(written)
    documents: dict[str, int] = {name: sum(1 for assigned in splits.values() if assigned == name) for name in wanted}
    result = ExportResult(
        out=out,
        format=format,
        rows=written,
        documents=documents,
        counts=counts,
        files=files,
        warnings=[*run.warnings, *_unchecked_duplicates(run, options)],
    )
    info_path = out / INFO_FILE
    info_path.write_text(redact(json.dumps(_info(run, result, options), indent=2), secrets), encoding="utf-8")
    result.files.append(info_path)
    return result


def _write_jsonl(
    out: Path, wanted: list[Split], rows: Iterator[tuple[Split, dict[str, Any]]]
) -> tuple[dict[str, int], list[Path]]:
    paths = {split: out / f"{split}.jsonl" for split in wanted}
    written: dict[str, int] = dict.fromkeys(wanted, 0)
    handles: dict[str, TextIO] = {}
    try:
        for split in wanted:
            handles[split] = paths[split].open("w", encoding="utf-8")
        for split, row in rows:
            handles[split].write(json.dumps(row, ensure_ascii=False) + "\n")
            written[split] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return written, list(paths.values())


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; exports are written into a directory.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    ours = [out / name for name in _OUTPUT_NAMES if (out / name).exists()]
    if not overwrite:
        raise ExportError(f"{out} is not empty; choose another --out or pass --overwrite to replace an export.")
    others = sorted(path.name for path in out.iterdir() if path not in ours)
    if others:
        raise ExportError(
            f"{out} holds files an export did not write ({', '.join(others[:5])}); choose an empty --out directory."
        )
    _remove_outputs(out)


def _remove_outputs(out: Path) -> None:
    for name in _OUTPUT_NAMES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _unchecked_duplicates(run: RunDirectory, options: ExportOptions) -> list[str]:
    """A warning when near-duplicates are to be dropped but the run never looked for them."""
    dedup = run.manifest.config.dedup if run.manifest is not None else {}
    if options.drop_near_duplicates and dedup.get("enabled") is False:
        return [
            f"{run.path} was run with near-duplicate detection off (dedup.enabled = false): no conversation is "
            "flagged, so none was dropped as a near-duplicate."
        ]
    return []


def _check_something_to_export(run: RunDirectory, counts: SelectionCounts) -> None:
    if counts.seen == 0:
        rejected = sum(1 for _ in run.conversations("rejected"))
        raise ExportError(
            f"{run.file('accepted')} holds no accepted conversations"
            + (f" ({rejected} rejected ones in {run.file('rejected').name})" if rejected else "")
            + "; only accepted conversations are exported."
        )
    if counts.kept == 0:
        raise ExportError(
            f"No conversation passed the filters: {_filter_summary(counts)}. Relax --min-score or keep "
            "near-duplicates with --keep-near-duplicates."
        )


def _nothing_written(format: ExportFormat, run: RunDirectory, counts: SelectionCounts) -> str:
    if format == "preference":
        return (
            f"No preference pairs in {run.path}: none of the {counts.kept} selected conversations has an assistant "
            "turn that the critic rejected and that a regeneration then fixed."
        )
    return f"Nothing to write from {run.path}: {_filter_summary(counts)}."


def _filter_summary(counts: SelectionCounts) -> str:
    return (
        f"{counts.seen} accepted, {counts.near_duplicate} dropped as near-duplicates, "
        f"{counts.below_min_score} below the minimum score"
    )


def _info(run: RunDirectory, result: ExportResult, options: ExportOptions) -> dict[str, Any]:
    return {
        "format": result.format,
        "source": str(run.path),
        "created_at": datetime.now(UTC).isoformat(),
        "codi_version": __version__,
        "options": options.model_dump(),
        "rows": result.rows,
        "documents": result.documents,
        "conversations": {
            "accepted_in_run": result.counts.seen,
            "kept": result.counts.kept,
            "near_duplicate": result.counts.near_duplicate,
            "below_min_score": result.counts.below_min_score,
        },
        "run": run.manifest.model_dump(mode="json", include=_MANIFEST_FIELDS) if run.manifest is not None else {},
        "warnings": result.warnings,
    }


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value
