"""The `hf` export format: rows to Parquet files in batches, then a `datasets.DatasetDict` saved to disk.

Memory stays flat however large the run: rows are written in batches of `HF_BATCH_ROWS`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codi_agents.export._formats import hf_features
from codi_agents.export._selection import Split

HF_BATCH_ROWS = 500
PARQUET_DIR = "parquet"
"""The `hf` format also keeps its rows as Parquet (`parquet/train.parquet`), for `load_dataset("parquet", ...)`."""


def write_hf(
    out: Path, wanted: list[Split], rows: Iterator[tuple[Split, dict[str, Any]]]
) -> tuple[dict[str, int], list[Path]]:
    """Rows to a `datasets.DatasetDict` saved in `out`, with progress bars silenced."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    quiet_before = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        return _save_hf(out, wanted, rows)
    finally:
        if not quiet_before:
            enable_progress_bars()


def _save_hf(
    out: Path, wanted: list[Split], rows: Iterator[tuple[Split, dict[str, Any]]]
) -> tuple[dict[str, int], list[Path]]:
    """Rows to one Parquet file per split, in batches, then a `DatasetDict` saved with `save_to_disk`; the
    Parquet files are kept in `parquet/`."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict

    features = hf_features()
    schema = features.arrow_schema
    written: dict[str, int] = dict.fromkeys(wanted, 0)
    with tempfile.TemporaryDirectory(prefix="codi-export-") as scratch:
        parquet: dict[str, Path] = {split: Path(scratch) / f"{split}.parquet" for split in wanted}
        writers: dict[str, Any] = {split: pq.ParquetWriter(parquet[split], schema) for split in wanted}
        batches: dict[str, list[dict[str, Any]]] = {split: [] for split in wanted}
        try:
            for split, row in rows:
                batches[split].append(row)
                written[split] += 1
                if len(batches[split]) >= HF_BATCH_ROWS:
                    writers[split].write_table(pa.Table.from_pylist(batches[split], schema=schema))
                    batches[split] = []
            for name, batch in batches.items():
                if batch:
                    writers[name].write_table(pa.Table.from_pylist(batch, schema=schema))
        finally:
            for writer in writers.values():
                writer.close()
        if sum(written.values()) == 0:
            return written, []
        cache = str(Path(scratch) / "cache")
        splits = {
            split: Dataset.from_parquet(str(parquet[split]), features=features, cache_dir=cache) for split in wanted
        }
        DatasetDict(splits).save_to_disk(str(out))
        (out / PARQUET_DIR).mkdir(exist_ok=True)
        for split in wanted:
            shutil.move(parquet[split], out / PARQUET_DIR / f"{split}.parquet")
    return written, [out / split for split in wanted] + [out / PARQUET_DIR / f"{split}.parquet" for split in wanted]
