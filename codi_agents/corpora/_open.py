"""Open a corpus as a stream, choosing the reader from what the path holds."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from codi_agents.corpora._files import FileSource
from codi_agents.corpora._source import CorpusSource
from codi_agents.corpora._tables import PARQUET_SUFFIX, HuggingFaceSource, ParquetSource
from codi_agents.errors import ConfigError
from codi_agents.inputs._documents import DEFAULT_MAX_BYTES, OversizePolicy

CorpusFormat = Literal["auto", "files", "parquet", "huggingface"]
HF_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")
"""Files `save_to_disk` writes: a folder holding one is a saved dataset."""


def open_source(
    spec: str | Path,
    *,
    corpus_format: CorpusFormat = "auto",
    id_column: str = "id",
    text_column: str = "text",
    title_column: str | None = None,
    split: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    oversize: OversizePolicy = "truncate",
) -> CorpusSource:
    """The streamed corpus at `spec`.

    `auto` picks a saved Hugging Face dataset for a folder `save_to_disk` wrote, Parquet for a
    `.parquet` file, a glob ending in `.parquet` or a folder holding `.parquet` files, and JSONL or
    document files otherwise. Columns apply to tables only; a JSONL record keeps `{id, title, text}`.
    """
    chosen = detect_format(Path(spec)) if corpus_format == "auto" else corpus_format
    if chosen != "huggingface" and split is not None:
        raise ConfigError(f"corpus_split applies to a saved Hugging Face dataset; {spec} is read as {chosen}.")
    if chosen == "files":
        return FileSource(spec, max_bytes=max_bytes, oversize=oversize)
    columns = {"id_column": id_column, "text_column": text_column, "title_column": title_column}
    if chosen == "parquet":
        return ParquetSource(spec, max_bytes=max_bytes, oversize=oversize, **columns)
    return HuggingFaceSource(spec, split=split, max_bytes=max_bytes, oversize=oversize, **columns)


def detect_format(path: Path) -> CorpusFormat:
    if path.is_dir():
        if any((path / marker).is_file() for marker in HF_MARKERS):
            return "huggingface"
        if any(True for _ in path.rglob(f"*{PARQUET_SUFFIX}")):
            return "parquet"
        return "files"
    return "parquet" if str(path).lower().endswith(PARQUET_SUFFIX) else "files"
