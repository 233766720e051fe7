"""The run directory's files: durable appends, a torn tail cut off, corrupt lines dropped, atomic replacement."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codi_agents.rundir._writer import RecordWriter, scan_records, write_atomic


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_writer_appends_lines_that_are_on_disk_when_the_future_is_done(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path)
    futures = [writer.append("accepted", json.dumps({"id": f"c{i}"})) for i in range(50)]
    futures.append(writer.append("rejected", json.dumps({"id": "r0"})))
    for future in futures:
        future.result(timeout=10)
    assert [json.loads(line)["id"] for line in lines(tmp_path / "accepted.jsonl")] == [f"c{i}" for i in range(50)]
    writer.close()
    assert lines(tmp_path / "rejected.jsonl") == ['{"id": "r0"}']


def test_a_torn_last_line_is_cut_off_and_the_file_appends_cleanly_after(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "turns": [{"ro')
    seen: list[str] = []
    repair = scan_records(path, lambda record: seen.append(record["id"]))
    assert seen == ["a", "b"] and repair.records == 2
    assert repair.torn_bytes == len(b'{"id": "c", "turns": [{"ro')
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "b"}\n'
    writer = RecordWriter(tmp_path)
    writer.append("accepted", '{"id": "c"}').result(timeout=10)
    writer.close()
    assert [json.loads(line)["id"] for line in lines(path)] == ["a", "b", "c"]


def test_a_complete_but_unparseable_last_line_is_also_cut(tmp_path: Path) -> None:
    path = tmp_path / "rejected.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b", "tur\n')
    repair = scan_records(path, lambda record: None)
    assert repair.records == 1 and path.read_bytes() == b'{"id": "a"}\n'


def test_corrupt_lines_in_the_middle_are_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    path.write_bytes(b'{"id": "a"}\ngarbage\n{"id": "b"}\n{"no": "id"}\n{"id": "c"}\n')
    seen: list[str] = []
    repair = scan_records(path, lambda record: seen.append(record["id"]))
    assert seen == ["a", "b", "c"] and repair.corrupt_lines == [2, 4]
    assert lines(path) == ['{"id": "a"}', '{"id": "b"}', '{"id": "c"}']


def test_missing_and_clean_files(tmp_path: Path) -> None:
    assert scan_records(tmp_path / "none.jsonl", lambda record: None).records == 0
    path = tmp_path / "ok.jsonl"
    path.write_bytes(b'{"id": "a"}\n')
    repair = scan_records(path, lambda record: None)
    assert repair.torn_bytes == 0 and not repair.corrupt_lines and path.read_bytes() == b'{"id": "a"}\n'


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("old")
    write_atomic(path, b'{"new": true}\n')
    assert json.loads(path.read_text()) == {"new": True}
    assert os.listdir(tmp_path) == ["manifest.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_temporary_files_left_by_a_killed_write_are_cleaned_when_the_run_resumes(tmp_path: Path) -> None:
    from codi_agents.rundir._writer import prepare_directory

    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".manifest.json.4242.139881.tmp", out / ".summary.json.4242.139881.tmp"]
    for path in stale:
        path.write_text('{"half": ')
    keep = out / ".notes.txt"
    keep.write_text("the user's own hidden file")
    prepare_directory(out, resume=True, force=False)
    assert not any(path.exists() for path in stale)
    assert keep.exists()


def test_a_new_record_file_is_made_durable_with_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codi_agents.rundir import _writer as store

    synced: list[Path] = []
    real = store.sync_directory
    monkeypatch.setattr(store, "sync_directory", lambda directory: (synced.append(directory), real(directory)))
    writer = RecordWriter(tmp_path)
    writer.append("accepted", '{"id": "a"}').result(timeout=10)
    writer.append("accepted", '{"id": "b"}').result(timeout=10)
    writer.close()
    assert synced == [tmp_path]  # once, when the file was created; later appends need only the file's fsync
