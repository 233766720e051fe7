"""The run directory's owner: typed manifest and summary (written and read with one model, failing loudly on a
renamed field), files of the previous codi version, the lock in one process, and readers that read whole lines."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from codi_agents import run
from codi_agents.errors import RunDirectoryError
from codi_agents.export import export_run
from codi_agents.report import build_report
from codi_agents.rundir import RunDirectory, RunLock, RunManifest, RunSummary, TornLineWarning, current_writer
from codi_agents.rundir._scan import JsonlScan
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "doc2dial_docs.jsonl"
PREVIOUS = DATA / "rundir_previous"
"""manifest.json, summary.json and accepted.jsonl of a 3-conversation run written by the previous codi (d3636ca)."""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    config = out.parent / "run.toml"
    config.write_text("[prices.assistant]\ninput = 0.5\noutput = 1.5\n")
    run(CORPUS, out, n=4, config=config, models=scripted_models(), embedding_function=HashingEmbeddingFunction())
    return out


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("index"))
    return target


def test_the_writer_and_the_readers_share_one_model_per_file(finished_run: Path) -> None:
    summary = RunSummary.model_validate_json((finished_run / "summary.json").read_bytes())
    manifest = RunManifest.model_validate_json((finished_run / "manifest.json").read_bytes())
    assert summary.status == "completed" and summary.finished == summary.planned == 4
    assert manifest.planned == 4 and manifest.sessions[-1].finished == 4 and manifest.sessions[-1].wall_seconds
    assert manifest.prices() == {"assistant": (0.5, 1.5)} and manifest.files.lock == "run.lock"
    opened = RunDirectory.open(finished_run)
    assert opened.summary == summary and opened.manifest == manifest and opened.writer is None
    overview = build_report(finished_run).overview
    assert (overview.planned, overview.wall_time_seconds, overview.wall_time_source) == (
        4,
        summary.wall_seconds,
        "summary.json",
    )
    assert next(row for row in overview.usage if row.role == "assistant").cost is not None  # prices from the manifest


@pytest.mark.parametrize(
    ("file", "rename"),
    [("summary.json", ("wall_seconds", "wall_time_seconds")), ("manifest.json", ("planned", "conversations_planned"))],
)
def test_a_renamed_field_fails_loudly_naming_the_file_and_the_field(
    finished_run: Path, tmp_path: Path, file: str, rename: tuple[str, str]
) -> None:
    out = copy_run(finished_run, tmp_path / "run")
    data = json.loads((out / file).read_text())
    old, new = rename
    data[new] = data.pop(old)
    (out / file).write_text(json.dumps(data))
    pattern = rf"{file}: not a Run(Summary|Manifest) this codi \([\d.]+\) can read \(written by .*\): {old}: field required"
    with pytest.raises(RunDirectoryError, match=pattern):
        build_report(out)
    with pytest.raises(RunDirectoryError, match=pattern):
        export_run(out, "openai", tmp_path / "export")
    if file == "manifest.json":  # a resume reads the manifest too, and refuses rather than guess
        with pytest.raises(RunDirectoryError, match=pattern):
            run(CORPUS, out, n=4, models=scripted_models(), embedding_function=HashingEmbeddingFunction())


def test_a_field_of_the_wrong_type_or_a_broken_file_fails_loudly(finished_run: Path, tmp_path: Path) -> None:
    out = copy_run(finished_run, tmp_path / "run")
    data = json.loads((out / "summary.json").read_text())
    data["planned"] = "many"
    (out / "summary.json").write_text(json.dumps(data))
    with pytest.raises(RunDirectoryError, match=r"summary.json: .*planned: input should be a valid integer"):
        RunDirectory.open(out)
    (out / "summary.json").write_text("[1, 2]")
    with pytest.raises(RunDirectoryError, match=r"summary.json: expected a JSON object, found list"):
        RunDirectory.open(out)


def test_files_written_by_the_previous_codi_are_read_by_export_and_report(tmp_path: Path) -> None:
    out = copy_run(PREVIOUS, tmp_path / "run")
    opened = RunDirectory.open(out)
    assert opened.manifest is not None and opened.summary is not None
    assert opened.summary.planned == 3 and opened.summary.by_persona
    report = build_report(out)
    assert report.overview.planned == 3 and report.overview.wall_time_source == "summary.json"
    assert report.overview.codi_version == opened.manifest.codi_version
    result = export_run(out, "openai", tmp_path / "export")
    assert sum(result.rows.values()) == report.overview.accepted
    assert json.loads((tmp_path / "export" / "export_info.json").read_text())["run"]["task"] == "grounded_qa"


def test_one_lock_per_directory_naming_its_holder_and_free_once_released(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    holder = first.acquire()
    assert holder.pid == os.getpid() and holder.host == socket.gethostname()
    assert current_writer(tmp_path) == holder  # a reader's probe sees the holder and leaves the lock alone
    with pytest.raises(RunDirectoryError, match=rf"being written by another run \(pid {os.getpid()} on "):
        second.acquire()
    assert first.held and not second.held
    first.release()
    assert current_writer(tmp_path) is None
    with second:
        assert current_writer(tmp_path) is not None
    assert current_writer(tmp_path) is None


def test_a_second_run_in_the_same_process_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out):  # as the first run holds it
        with pytest.raises(RunDirectoryError, match=rf"being written by another run \(pid {os.getpid()}"):
            run(CORPUS, out, n=2, models=scripted_models(), embedding_function=HashingEmbeddingFunction())
        assert not (out / "manifest.json").exists() and not (out / "accepted.jsonl").exists()
    summary = run(CORPUS, out, n=2, models=scripted_models(), embedding_function=HashingEmbeddingFunction())
    assert summary["finished"] == 2
    assert current_writer(out) is None  # the run let go of its directory


def test_readers_read_whole_lines_only(finished_run: Path, tmp_path: Path) -> None:
    out = copy_run(finished_run, tmp_path / "run")
    whole = (out / "accepted.jsonl").read_bytes()
    last = whole.splitlines()[-1]
    (out / "accepted.jsonl").write_bytes(whole + last)  # a line being written: valid JSON, no newline yet
    opened = RunDirectory.open(out)
    with pytest.warns(TornLineWarning, match="cut off"):
        assert len(list(opened.conversations("accepted"))) == len(whole.splitlines())
    scan = JsonlScan(out / "accepted.jsonl", on_corrupt=lambda bad: None)
    assert sum(1 for _ in scan) == len(whole.splitlines()) and [bad.problem for bad in scan.torn] == [
        "an incomplete line (no newline at the end)"
    ]
