"""Tables as streamed corpora: Parquet shards and Hugging Face datasets saved to disk.

A row is a record `{id, title, text}` taken from the columns named by config, and goes through the
JSONL record rules (`corpora._eager`). Parquet is read batch by batch while scanning and by row group
when reading, never whole; a saved dataset is memory-mapped by `datasets`, so neither holds a
corpus in memory.
"""

from __future__ import annotations

import glob
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from codi_agents.corpora._eager import _GLOB_CHARACTERS, _display, _hidden
from codi_agents.corpora._source import CorpusSource, DocRef, Record
from codi_agents.errors import DocumentError
from codi_agents.inputs._documents import OversizePolicy

BATCH_ROWS = 4096
"""Rows converted to Python at a time while scanning: the scan's memory does not grow with a shard."""
PARQUET_SUFFIX = ".parquet"


class TableSource(CorpusSource):
    """Rows of tables with an id, a text and an optional title column."""

    source_format = "table"

    def __init__(
        self,
        source: str,
        *,
        id_column: str,
        text_column: str,
        title_column: str | None,
        max_bytes: int,
        oversize: OversizePolicy = "truncate",
    ) -> None:
        super().__init__(source, max_bytes=max_bytes, oversize=oversize)
        self.id_column = id_column
        self.text_column = text_column
        self.title_column = title_column

    @abstractmethod
    def batches(self, shard: int) -> Iterator[dict[str, list[Any]]]:
        """The shard's rows, a batch of columns at a time."""

    @abstractmethod
    def rows(self, shard: int, positions: Sequence[int]) -> dict[str, list[Any]]:
        """The columns of the rows at `positions`, in that order."""

    def records(self, shard: int) -> Iterator[Record]:
        """Every row of one shard as a record."""
        position = 0
        for batch in self.batches(shard):
            for values in zip(*(batch[column] for column in self._columns()), strict=True):
                yield self._record(shard, position, values)
                position += 1

    def read_shard(self, shard: int, refs: Sequence[DocRef]) -> list[Record]:
        """The rows at `refs` as records."""
        batch = self.rows(shard, [ref.position for ref in refs])
        rows = zip(*(batch[column] for column in self._columns()), strict=True)
        return [self._record(shard, ref.position, values) for ref, values in zip(refs, rows, strict=True)]

    def check_columns(self, available: Sequence[str], where: str) -> None:
        """Refuse a table without the configured columns, naming them and the ones it has."""
        for role, column in (("id", self.id_column), ("text", self.text_column), ("title", self.title_column)):
            if column is not None and column not in available:
                raise DocumentError(
                    f"{where} has no column {column!r} for the document {role}; its columns are "
                    f"{', '.join(available)}. Name the right one with corpus_{role}_column."
                )

    def _columns(self) -> list[str]:
        return [self.id_column, self.text_column] + ([self.title_column] if self.title_column else [])

    def _record(self, shard: int, position: int, values: tuple[Any, ...]) -> Record:
        where = self.name(shard, position, 0)
        fields: dict[str, Any] = {"id": values[0], "text": values[1]}
        if self.title_column:
            fields["title"] = values[2]
        return Record(position, 0, where, self.document(fields, where, self.source_format))


class ParquetSource(TableSource):
    """One Parquet file, a folder of them or a glob; shards in path order."""

    source_format = "parquet"

    def __init__(self, spec: str | Path, **options: Any) -> None:
        super().__init__(_display(str(spec)), **options)
        self._paths = _parquet_files(spec)
        self._names = [_display(str(path)) for path in self._paths]
        import pyarrow.parquet as pq

        for path in self._paths:
            self.check_columns(pq.ParquetFile(path).schema_arrow.names, _display(str(path)))

    @property
    def shards(self) -> Sequence[str]:
        """The Parquet files in reading order."""
        return [str(path) for path in self._paths]

    def batches(self, shard: int) -> Iterator[dict[str, list[Any]]]:
        """Record batches of `BATCH_ROWS` rows, only the needed columns."""
        import pyarrow.parquet as pq

        with pq.ParquetFile(self._paths[shard]) as table:
            for batch in table.iter_batches(batch_size=BATCH_ROWS, columns=self._columns()):
                yield batch.to_pydict()

    def rows(self, shard: int, positions: Sequence[int]) -> dict[str, list[Any]]:
        """The rows at `positions`: only the row groups that hold them are read."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with pq.ParquetFile(self._paths[shard]) as table:
            starts = [0]
            for group in range(table.metadata.num_row_groups):
                starts.append(starts[-1] + table.metadata.row_group(group).num_rows)
            groups = sorted({_group_of(starts, position) for position in positions})
            if any(group < 0 for group in groups):
                raise DocumentError(f"{self.shards[shard]} has fewer rows than planned: the corpus changed.")
            read = pa.concat_tables([table.read_row_group(group, columns=self._columns()) for group in groups])
        base, offset = {}, 0  # where each row group starts in the concatenated table
        for group in groups:
            base[group] = offset
            offset += starts[group + 1] - starts[group]
        indices = []
        for position in positions:
            group = _group_of(starts, position)
            indices.append(base[group] + position - starts[group])
        found: dict[str, list[Any]] = read.take(indices).to_pydict()
        return found

    def name(self, shard: int, position: int, line: int) -> str:
        """`file#row` (rows counted from 0)."""
        return f"{self._names[shard]}#{position}"


class HuggingFaceSource(TableSource):
    """A dataset saved with `save_to_disk` (a `DatasetDict` needs `split`), memory-mapped."""

    source_format = "huggingface"

    def __init__(self, spec: str | Path, *, split: str | None = None, **options: Any) -> None:
        super().__init__(_display(str(spec)), **options)
        self.path = str(spec)
        self.split = split
        self._handle: Any = None
        self.check_columns(list(self._dataset().column_names), self.source)

    @property
    def shards(self) -> Sequence[str]:
        """One shard: the dataset (its Arrow files are memory-mapped as one table)."""
        return [self.path]

    def batches(self, shard: int) -> Iterator[dict[str, list[Any]]]:
        """Slices of `BATCH_ROWS` rows, only the needed columns."""
        dataset = self._dataset().select_columns(self._columns())
        for start in range(0, len(dataset), BATCH_ROWS):
            yield dataset[start : start + BATCH_ROWS]

    def rows(self, shard: int, positions: Sequence[int]) -> dict[str, list[Any]]:
        """The rows at `positions`, read through the memory map."""
        dataset = self._dataset().select_columns(self._columns())
        if positions and max(positions) >= len(dataset):
            raise DocumentError(f"{self.source} has fewer rows than planned: the corpus changed.")
        return dict(dataset[list(positions)])

    def name(self, shard: int, position: int, line: int) -> str:
        """`folder[split]#row` (rows counted from 0)."""
        return f"{self.source}[{self.split}]#{position}" if self.split else f"{self.source}#{position}"

    def _dataset(self) -> Any:
        if self._handle is None:
            from datasets import Dataset, DatasetDict, load_from_disk

            loaded = load_from_disk(self.path)
            if isinstance(loaded, DatasetDict):
                splits = ", ".join(loaded)
                if self.split is None:
                    raise DocumentError(f"{self.source} holds the splits {splits}; choose one with corpus_split.")
                if self.split not in loaded:
                    raise DocumentError(f"{self.source} has no split {self.split!r}; its splits are {splits}.")
                loaded = loaded[self.split]
            elif self.split is not None:
                raise DocumentError(f"{self.source} is a single dataset without splits; leave corpus_split unset.")
            if not isinstance(loaded, Dataset):
                raise DocumentError(f"{self.source} is not a dataset saved with save_to_disk.")
            self._handle = loaded
        return self._handle


def _group_of(starts: Sequence[int], position: int) -> int:
    """The row group holding `position`, or -1 past the end."""
    import bisect

    group = bisect.bisect_right(starts, position) - 1
    return group if 0 <= position < starts[-1] else -1


def _parquet_files(spec: str | Path) -> list[Path]:
    """The Parquet files of a file, a folder (recursively, hidden entries left out) or a glob."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(item for item in path.rglob(f"*{PARQUET_SUFFIX}") if item.is_file() and not _hidden(item, path))
    elif path.is_file():
        files = [path]
    elif _GLOB_CHARACTERS & set(str(spec)):
        files = sorted(Path(found) for found in glob.glob(str(spec), recursive=True) if Path(found).is_file())
    else:
        raise DocumentError(f"Corpus not found: {spec}. Give a .parquet file, a folder of them or a glob.")
    if not files:
        raise DocumentError(f"No Parquet files in {spec!r}. Check the path or the pattern (quote it for the shell).")
    return files
