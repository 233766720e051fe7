"""Benchmark: planning a corpus of a million documents from Parquet shards, streamed.

    python bench/plan_million.py                    # 1,000,000 documents in 20 shards
    python bench/plan_million.py --documents 100000 # a quicker run

Writes a synthetic corpus (short documents, ~200 bytes each, 1% exact duplicates, a few empty texts)
as Parquet shards in a temporary folder, then plans over it in a fresh child process: `open_source` +
`CorpusSource.scan()` (every text read once, hashed for duplicates and the fingerprint, dropped), then
`read()` of two 1,000-document chunks, as a worker would (the first loads pyarrow's kernels). Reports
the child's peak RSS (the planning process alone: the writer's memory is not counted), its RSS after
imports, and the times.
Target of issue 14: the planner stays under 1 GB RSS for 1,000,000 documents.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = "tide moon harbour ship lantern river salt chart wind shore current anchor reef gull beacon".split()


def write_corpus(folder: Path, documents: int, shards: int) -> None:
    """`documents` rows `{id, title, text}` in `shards` Parquet files with row groups of 10,000."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_shard = -(-documents // shards)
    for shard in range(shards):
        start, stop = shard * per_shard, min(documents, (shard + 1) * per_shard)
        ids, titles, texts = [], [], []
        for number in range(start, stop):
            source = number - 1 if number % 100 == 99 else number  # 1% share the previous document's text
            words = " ".join(WORDS[(source * 7 + k * 3) % len(WORDS)] for k in range(20))
            texts.append("" if number % 10_000 == 5 else f"Document {source}: {words}. Logbook entry {source}.")
            ids.append(f"doc-{number:08d}")
            titles.append(f"Entry {number}")
        table = pa.table({"id": ids, "title": titles, "text": texts})
        pq.write_table(table, folder / f"part-{shard:05d}.parquet", row_group_size=10_000)


def plan(folder: str) -> dict[str, float | int | str]:
    """Run in the child: scan the corpus and read one chunk; return the measurements."""
    from codi_agents.corpora import open_source

    imported = _rss_mb()
    started = time.perf_counter()
    source = open_source(folder, title_column="title")
    scanned = source.scan()
    scan_seconds = time.perf_counter() - started
    middle = len(scanned.refs) // 2
    started = time.perf_counter()
    chunk = source.read(scanned.refs[middle : middle + 1000])
    first_read_seconds = time.perf_counter() - started  # includes loading pyarrow's compute kernels
    started = time.perf_counter()
    source.read(scanned.refs[middle + 50_000 : middle + 51_000])
    read_seconds = time.perf_counter() - started
    return {
        "planned": len(scanned.refs),
        "skipped": len(scanned.skipped),
        "duplicates": len(scanned.duplicates),
        "fingerprint": scanned.fingerprint,
        "read": len(chunk),
        "rss_after_imports_mb": imported,
        "peak_rss_mb": _rss_mb(),
        "scan_seconds": round(scan_seconds, 1),
        "first_read_1000_seconds": round(first_read_seconds, 3),
        "read_1000_seconds": round(read_seconds, 3),
    }


def _rss_mb() -> float:
    """Peak resident memory of this process, in MB (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    """Write the corpus, plan it in a child process, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(plan(arguments.child)))
        return
    with tempfile.TemporaryDirectory(prefix="codi-plan-million-") as folder:
        started = time.perf_counter()
        write_corpus(Path(folder), arguments.documents, arguments.shards)
        size = sum(path.stat().st_size for path in Path(folder).iterdir()) / 1e6
        print(f"wrote {arguments.documents:,} documents in {arguments.shards} shards ({size:.0f} MB) "
              f"in {time.perf_counter() - started:.1f} s")
        child = subprocess.run(
            [sys.executable, __file__, "--child", folder], capture_output=True, text=True, check=True
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    verdict = "under" if float(result["peak_rss_mb"]) < 1024 else "OVER"
    print(f"planner peak RSS {result['peak_rss_mb']} MB: {verdict} the 1 GB target")


if __name__ == "__main__":
    main()
