"""`codi scan`: what in a corpus is aimed at a model, found before any money is spent on a run.

The corpus is read and chunked exactly as a run reads and chunks it (`read_corpus`, `chunk_document` with the
settings' chunk size and overlap, `--config` honoured), every passage is scored by the trained injection
detector (all passages of a document in one batch) and matched against the regex markers. Flagged passages
are listed; `--json` writes one entry per passage scanned. Flags are findings, not errors: the exit code is 0
whenever the corpus could be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from codi_agents._security import detect_injections, injection_markers
from codi_agents.cli._common import ConfigOption
from codi_agents.config._resolve import resolve_settings
from codi_agents.corpora._eager import read_corpus
from codi_agents.errors import UserError
from codi_agents.inputs._passages import chunk_document


class ScannedPassage(BaseModel):
    """One passage of the corpus and what the scan found in it."""

    doc_id: str
    passage_id: str
    score: float
    """The detector's probability that the passage holds an instruction aimed at a model."""
    detector_flagged: bool
    sentence: str | None
    """The sentence the detector names, when it flags the passage."""
    markers: list[str]
    """The regex markers (the cheap first layer) found in the passage."""

    @property
    def flagged(self) -> bool:
        """Flagged by the detector or by a marker."""
        return self.detector_flagged or bool(self.markers)


def scan_command(
    corpus: Annotated[str, typer.Argument(help="A .jsonl file, a folder of documents or a glob, as for `codi run`.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write one entry per passage scanned (with its score) here.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """List every passage of CORPUS that holds an instruction aimed at a model (trained detector + regex markers).

    Exit code 0 whenever the corpus is read, flags or not: flags are findings, not errors.
    """
    console = Console()
    settings = resolve_settings(config=config)
    with console.status(f"reading {corpus}..."):
        read = read_corpus(corpus, max_bytes=settings.max_document_bytes, oversize=settings.oversize)
    if not read.documents:
        raise UserError(f"No usable documents in {corpus}; nothing to scan.")
    scanned: list[ScannedPassage] = []
    with console.status(f"scanning {len(read.documents)} documents..."):
        for document in read.documents:
            passages = chunk_document(document, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
            verdicts = detect_injections([passage.text for passage in passages])
            scanned.extend(
                ScannedPassage(
                    doc_id=document.id,
                    passage_id=passage.id,
                    score=round(verdict.score, 4),
                    detector_flagged=verdict.flagged,
                    sentence=verdict.sentence,
                    markers=injection_markers(passage.text),
                )
                for passage, verdict in zip(passages, verdicts, strict=True)
            )
    flagged = [item for item in scanned if item.flagged]
    for skipped in read.skipped:
        console.print(f"[yellow]skipped {skipped.source}:[/] {skipped.reason}", highlight=False)
    if flagged:
        console.print(_table(flagged))
    console.print(
        f"{len(flagged)} of {len(scanned)} passages in {len(read.documents)} documents flagged", highlight=False
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(_as_json(corpus, scanned), indent=2), encoding="utf-8")
        console.print(f"wrote {json_out}", highlight=False, soft_wrap=True)


def _table(flagged: list[ScannedPassage]) -> Table:
    table = Table(title="Passages with instructions aimed at a model")
    for column in ("document", "passage", "score", "flagged sentence", "markers"):
        table.add_column(column, overflow="fold")
    for item in flagged:
        table.add_row(
            item.doc_id, item.passage_id, f"{item.score:.3f}", item.sentence or "", ", ".join(item.markers) or "-"
        )
    return table


def _as_json(corpus: str, scanned: list[ScannedPassage]) -> dict[str, Any]:
    return {
        "corpus": corpus,
        "passages_scanned": len(scanned),
        "passages_flagged": sum(item.flagged for item in scanned),
        "passages": [{**item.model_dump(), "flagged": item.flagged} for item in scanned],
    }
