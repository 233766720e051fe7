"""Streamed corpora: a scan plans from references, `read` returns exactly the planned documents."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from codi_agents.corpora import HuggingFaceSource, ParquetSource, open_source
from codi_agents.corpora._eager import read_corpus
from codi_agents.errors import ConfigError, DocumentError


def _mixed_folder(root: Path) -> Path:
    """A folder with every case the eager reader handles: good, bad, empty, duplicate, oversize."""
    folder = root / "corpus"
    (folder / "sub").mkdir(parents=True)
    lines = [
        json.dumps({"id": "a", "title": "A", "text": "Alpha text about tides."}),
        "",
        "{not json",
        json.dumps({"id": "b", "text": "   "}),
        json.dumps({"id": "a", "text": "Another text with the same id."}),
        json.dumps({"doc_id": "c", "text": "Alpha text about tides."}),
        json.dumps({"id": "big", "text": "x" * 400}),
        json.dumps({"text": "No id, named by its line."}),
        json.dumps(["a list"]),
    ]
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "sub" / "note.txt").write_text("A plain note about the moon.", encoding="utf-8")
    (folder / "sub" / "same.md").write_text("A plain note about the moon.", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG....")
    (folder / ".hidden.txt").write_text("never read", encoding="utf-8")
    return folder


@pytest.mark.parametrize("oversize", ["truncate", "skip"])
def test_files_stream_agrees_with_the_eager_reader(tmp_path: Path, oversize: str) -> None:
    folder = _mixed_folder(tmp_path)
    eager = read_corpus(folder, max_bytes=100, oversize=oversize)  # type: ignore[arg-type]
    source = open_source(folder, max_bytes=100, oversize=oversize)  # type: ignore[arg-type]
    scanned = source.scan()
    assert [ref.id for ref in scanned.refs] == [document.id for document in eager.documents]
    assert scanned.skipped == eager.skipped
    assert scanned.duplicates == eager.duplicates == {"c": "a", "sub/same.md": "sub/note.txt"}
    assert scanned.truncated == eager.truncated
    assert scanned.fingerprint == eager.fingerprint()
    assert source.read(reversed(scanned.refs)) == list(reversed(eager.documents))


def test_a_jsonl_file_and_a_glob_are_streamed_too(tmp_path: Path) -> None:
    folder = _mixed_folder(tmp_path)
    for spec in (folder / "records.jsonl", f"{folder}/**/*.txt"):
        eager = read_corpus(spec, max_bytes=1000)
        scanned = open_source(spec, max_bytes=1000).scan()
        assert [ref.id for ref in scanned.refs] == [document.id for document in eager.documents]
        assert scanned.fingerprint == eager.fingerprint()


def _write_shards(folder: Path, rows: list[dict[str, object]], *, per_shard: int, row_group: int) -> None:
    folder.mkdir()
    for number, start in enumerate(range(0, len(rows), per_shard)):
        table = pa.Table.from_pylist(rows[start : start + per_shard])
        pq.write_table(table, folder / f"part-{number:03d}.parquet", row_group_size=row_group)


def _rows(count: int) -> list[dict[str, object]]:
    return [{"doc": f"d{n}", "body": f"Document number {n} about topic {n % 7}.", "name": f"T{n}"} for n in range(count)]


def test_parquet_shards_plan_and_read_any_subset(tmp_path: Path) -> None:
    rows = _rows(50)
    rows[7]["body"] = None  # a missing text is skipped and named
    rows[30]["body"] = rows[3]["body"]  # the same text in another shard is a duplicate
    rows[41]["doc"] = "d2"  # an id seen before is skipped
    _write_shards(tmp_path / "shards", rows, per_shard=20, row_group=6)
    source = open_source(tmp_path / "shards", id_column="doc", text_column="body", title_column="name", max_bytes=1000)
    assert isinstance(source, ParquetSource)
    scanned = source.scan()
    expected = [f"d{n}" for n in range(50) if n not in (7, 30, 41)]
    assert [ref.id for ref in scanned.refs] == expected
    assert scanned.duplicates == {"d30": "d3"}
    assert [(Path(item.source).name, item.reason.split(";")[0]) for item in scanned.skipped] == [
        ("part-000.parquet#7", "not a record with a `text` string"),
        ("part-002.parquet#1", "duplicate id 'd2' (first at " + str(tmp_path / "shards" / "part-000.parquet") + "#2)"),
    ]
    chosen = random.Random(3).sample(scanned.refs, 12)
    documents = source.read(chosen)
    assert [document.id for document in documents] == [ref.id for ref in chosen]
    for document in documents:
        number = int(document.id[1:])
        assert document.text == rows[number]["body"]
        assert document.title == f"T{number}"
        assert document.metadata == {"format": "parquet"}


def test_parquet_fingerprint_follows_the_texts(tmp_path: Path) -> None:
    rows = _rows(10)
    _write_shards(tmp_path / "one", rows, per_shard=10, row_group=4)
    rows[4]["body"] = "A changed text."
    _write_shards(tmp_path / "two", rows, per_shard=5, row_group=2)
    first = open_source(tmp_path / "one", id_column="doc", text_column="body").scan()
    again = open_source(tmp_path / "one" / "*.parquet", id_column="doc", text_column="body").scan()
    changed = open_source(tmp_path / "two", id_column="doc", text_column="body").scan()
    assert first.fingerprint == again.fingerprint != changed.fingerprint


def test_a_missing_column_is_named_with_the_ones_there_are(tmp_path: Path) -> None:
    _write_shards(tmp_path / "shards", _rows(3), per_shard=3, row_group=3)
    with pytest.raises(DocumentError, match=r"no column 'text' for the document text; its columns are doc, body, name"):
        open_source(tmp_path / "shards", id_column="doc")
    with pytest.raises(DocumentError, match="No Parquet files"):
        open_source(tmp_path / "nothing-*.parquet")


def test_a_source_travels_to_a_worker_by_pickle_and_notices_a_changed_corpus(tmp_path: Path) -> None:
    _write_shards(tmp_path / "shards", _rows(12), per_shard=6, row_group=3)
    source = open_source(tmp_path / "shards", id_column="doc", text_column="body")
    scanned = source.scan()
    worker = pickle.loads(pickle.dumps(source))
    assert [document.id for document in worker.read(scanned.refs[4:9])] == ["d4", "d5", "d6", "d7", "d8"]
    pq.write_table(pa.Table.from_pylist(_rows(2)), tmp_path / "shards" / "part-001.parquet")
    with pytest.raises(DocumentError, match="the corpus changed"):
        worker.read(scanned.refs[7:9])


def test_a_jsonl_edited_after_planning_is_an_error_not_a_wrong_document(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"x{n}", "text": f"text {n}"}) + "\n" for n in range(5)))
    source = open_source(path, max_bytes=1000)
    refs = source.scan().refs
    path.write_text(json.dumps({"id": "other", "text": "shifted"}) + "\n" + path.read_text())
    with pytest.raises(DocumentError, match=r"no longer holds document 'x2'.*start a new run directory"):
        source.read(refs[2:3])


def test_saved_hugging_face_datasets_with_and_without_splits(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    rows = _rows(9)
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    DatasetDict({"train": Dataset.from_list(rows[:5]), "test": Dataset.from_list(rows[5:])}).save_to_disk(
        str(tmp_path / "splits")
    )
    single = open_source(tmp_path / "single", id_column="doc", text_column="body", title_column="name")
    assert isinstance(single, HuggingFaceSource)
    refs = single.scan().refs
    assert [document.title for document in single.read([refs[8], refs[0]])] == ["T8", "T0"]
    test = open_source(tmp_path / "splits", split="test", id_column="doc", text_column="body")
    assert [ref.id for ref in test.scan().refs] == ["d5", "d6", "d7", "d8"]
    assert pickle.loads(pickle.dumps(test)).read(test.scan().refs[1:2])[0].source.endswith("[test]#1")
    with pytest.raises(DocumentError, match="holds the splits train, test; choose one with corpus_split"):
        open_source(tmp_path / "splits", id_column="doc", text_column="body")
    with pytest.raises(DocumentError, match="has no split 'dev'"):
        open_source(tmp_path / "splits", split="dev", id_column="doc", text_column="body")
    with pytest.raises(ConfigError, match="corpus_split applies to a saved Hugging Face dataset"):
        open_source(tmp_path / "single.jsonl", split="train")


def test_nothing_usable_is_an_error_that_names_the_reasons(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text('{"id": "a", "text": ""}\n{oops\n')
    with pytest.raises(DocumentError, match=r"No readable documents .*empty.jsonl:1: the text is empty"):
        open_source(path, max_bytes=1000).scan()
