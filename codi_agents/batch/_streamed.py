"""A run's corpus read as a stream (`codi_agents.corpora`): planned from references, read where it is used.

The in-process runner keeps the eager reader (`read_corpus`) for JSONL files, folders and globs: its
skip messages and order are the ones users know, and its documents are needed in that process anyway.
Parquet shards and saved Hugging Face datasets are read through `open_source` (in process: scanned, then
read whole). A run with Ray workers always plans from the stream: the driver holds references only
(`DocRef`: id, shard, position) and each worker reads the documents of the conversations it is given.

`StreamedCorpus` answers what the manifest, the summary and `--dry-run` ask of a `Corpus` (source,
documents used, skips, duplicates, truncations, replaced bytes, fingerprint), from a `ScannedCorpus`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codi_agents.config._run_config import RunConfig
from codi_agents.corpora._eager import Corpus, Skipped
from codi_agents.corpora._open import detect_format, open_source
from codi_agents.corpora._source import CorpusSource, DocRef, ScannedCorpus
from codi_agents.inputs._documents import OversizePolicy


@dataclass
class StreamedCorpus:
    """The facts of a scanned corpus, shaped like `Corpus`; `documents` holds references (or documents read)."""

    source: str
    documents: Sequence[Any]
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)
    replaced_bytes: dict[str, int] = field(default_factory=dict)
    scanned_fingerprint: str = ""

    @classmethod
    def of(cls, scanned: ScannedCorpus, documents: Sequence[Any] | None = None) -> StreamedCorpus:
        """The view of `scanned`; `documents` replaces its references when they were read."""
        return cls(
            source=scanned.source,
            documents=scanned.refs if documents is None else documents,
            skipped=scanned.skipped,
            duplicates=scanned.duplicates,
            truncated=scanned.truncated,
            replaced_bytes=scanned.replaced_bytes,
            scanned_fingerprint=scanned.fingerprint,
        )

    def fingerprint(self) -> str:
        """The corpus fingerprint, equal to `Corpus.fingerprint()` of the same documents."""
        return self.scanned_fingerprint


RunCorpus = Corpus | StreamedCorpus
"""What a run read: eagerly (`Corpus`) or as a stream (`StreamedCorpus`)."""


def open_run_source(spec: str | Path, config: RunConfig, *, max_bytes: int, oversize: OversizePolicy) -> CorpusSource:
    """The streamed corpus at `spec`, with the run's column options."""
    return open_source(
        spec,
        id_column=config.corpus_id_column,
        text_column=config.corpus_text_column,
        title_column=config.corpus_title_column,
        split=config.corpus_split,
        max_bytes=max_bytes,
        oversize=oversize,
    )


def scan_for_run(
    spec: str | Path, config: RunConfig, *, max_bytes: int, oversize: OversizePolicy, references: bool
) -> tuple[StreamedCorpus, CorpusSource]:
    """Scan the corpus; with `references` the view keeps `DocRef`s (workers read), else the documents read."""
    source = open_run_source(spec, config, max_bytes=max_bytes, oversize=oversize)
    scanned = source.scan()
    if references:
        return StreamedCorpus.of(scanned), source
    return StreamedCorpus.of(scanned, source.read(scanned.refs)), source


def needs_stream(spec: str | Path) -> bool:
    """True when the in-process runner must read `spec` through `open_source`: Parquet or a saved dataset."""
    return detect_format(Path(spec)) != "files"


__all__ = ["DocRef", "RunCorpus", "StreamedCorpus", "needs_stream", "open_run_source", "scan_for_run"]
