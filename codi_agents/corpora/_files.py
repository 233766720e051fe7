"""JSONL files and folders of documents as a streamed corpus.

The files are the ones `read_corpus` reads (a file, a folder without hidden entries, or a glob),
in the same order, and each record or file goes through the same rules (`corpora._eager`): a JSONL
record is remembered by the byte offset of its line, any other file by its index.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from codi_agents.corpora._eager import (
    _GLOB_CHARACTERS,
    JSON_OVERHEAD_FACTOR,
    JSONL_SUFFIXES,
    Corpus,
    _display,
    _hidden,
    _Reader,
)
from codi_agents.corpora._source import CorpusSource, DocRef, Record
from codi_agents.errors import DocumentError
from codi_agents.inputs._documents import OversizePolicy

LINE_SLACK = 65_536
"""Bytes a JSONL line may hold beyond its text's escaped size (the id, the title, the keys)."""


class FileSource(CorpusSource):
    """A JSONL file, a folder of documents or a glob, read record by record."""

    def __init__(self, spec: str | Path, *, max_bytes: int, oversize: OversizePolicy = "truncate") -> None:
        super().__init__(_display(str(spec)), max_bytes=max_bytes, oversize=oversize)
        self._files = _resolve(spec)
        self._names = [_display(str(path)) for path, _ in self._files]

    @property
    def shards(self) -> Sequence[str]:
        """The files, as paths, in reading order."""
        return [str(path) for path, _ in self._files]

    def records(self, shard: int) -> Iterator[Record]:
        """The records of one file: each JSONL line, or the file as one document."""
        path, name = self._files[shard]
        if path.suffix.lower() in JSONL_SUFFIXES:
            yield from self._jsonl(shard, path)
        else:
            yield self._whole_file(shard, path, name)

    def read_shard(self, shard: int, refs: Sequence[DocRef]) -> list[Record]:
        """The records at `refs`: JSONL lines read at their offsets, or the whole file again."""
        path, name = self._files[shard]
        if path.suffix.lower() not in JSONL_SUFFIXES:
            return [self._whole_file(shard, path, name) for _ in refs]
        records = []
        with path.open("rb") as handle:
            for ref in refs:
                handle.seek(ref.position)
                record = self._line(handle, ref.position, ref.line, self.name(shard, ref.position, ref.line))
                records.append(record or Record(ref.position, ref.line, self.name(shard, ref.position, ref.line), None))
        return records

    def name(self, shard: int, position: int, line: int) -> str:
        """`file:line` for a JSONL record, the file's path otherwise."""
        return f"{self._names[shard]}:{line}" if line else self._names[shard]

    def _jsonl(self, shard: int, path: Path) -> Iterator[Record]:
        try:
            handle = path.open("rb")
        except OSError as error:
            self.skip(_display(str(path)), f"cannot be read: {error.strerror or error}")
            return
        with handle:
            number = 0
            while True:
                offset = handle.tell()
                number += 1
                record = self._line(handle, offset, number, self.name(shard, offset, number))
                if record is None:
                    return
                if record.position >= 0:
                    yield record

    def _line(self, handle: BinaryIO, offset: int, number: int, where: str) -> Record | None:
        """The record of the line at the handle's position; None at the end, position -1 for a blank line."""
        line_limit = self.max_bytes * JSON_OVERHEAD_FACTOR + LINE_SLACK
        raw = handle.readline(line_limit)
        if not raw:
            return None
        if not raw.endswith(b"\n") and len(raw) == line_limit:
            while (rest := handle.readline(line_limit)) and not rest.endswith(b"\n"):
                pass
            self.skip(where, f"record is larger than the limit of {self.max_bytes:,} bytes of text")
            return Record(offset, number, where, None)
        if not raw.strip():
            return Record(-1, number, where, None)
        return Record(offset, number, where, self._reader.record(raw, where))

    def _whole_file(self, shard: int, path: Path, name: str) -> Record:
        """One non-JSONL file as a record, read by the eager reader's own rules."""
        reader = _Reader(Corpus(source=self.source), self.max_bytes, self.oversize)
        reader.read_file(path, name)
        for skipped in reader.corpus.skipped:
            self._reader.corpus.skipped.append(skipped)
        document = reader.corpus.documents[0] if reader.corpus.documents else None
        return Record(0, 0, _display(str(path)), document)


def _resolve(spec: str | Path) -> list[tuple[Path, str]]:
    """The files of `spec` with the names their documents get, in `read_corpus`'s order."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(item for item in path.rglob("*") if item.is_file() and not _hidden(item, path))
        return [(item, item.relative_to(path).as_posix()) for item in files]
    if path.is_file():
        return [(path, path.name)]
    if _GLOB_CHARACTERS & set(str(spec)):
        files = [match for match in sorted(Path(found) for found in glob.glob(str(spec), recursive=True))]
        files = [match for match in files if match.is_file()]
        if not files:
            raise DocumentError(f"No files match {spec!r}. Check the pattern (quote it so the shell leaves it alone).")
        return [(item, item.as_posix()) for item in files]
    raise DocumentError(f"Corpus not found: {spec}. Give a .jsonl file, a folder of documents or a glob.")
