"""One run per run directory, with real processes: a second `codi run` is refused at once naming the first,
export and report read a directory while it is written, and kill -9 leaves no stale lock behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codi_agents.cli import main
from codi_agents.export import export_run
from codi_agents.report import build_report
from codi_agents.rundir import RunManifest, RunSummary, current_writer
from codi_agents.rundir._lock import read_holder
from codi_agents.testing import FakeOpenAIServer

WAIT_SECONDS = 180


def codi_run_argv(corpus: Path, out: Path, server: FakeOpenAIServer, *options: object) -> list[str]:
    """`codi run` against the fake server, as arguments."""
    return [str(part) for part in (corpus, "--out", out, *options)] + [
        "--base-url", server.base_url, "--model", "codi-fake", "--api-key", "fake",
    ]  # fmt: skip


def start_codi_run(corpus: Path, out: Path, server: FakeOpenAIServer, *options: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "codi_agents", "run", *codi_run_argv(corpus, out, server, *options)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def record_ids(out: Path) -> list[str]:
    """The ids of the finished conversations on disk (whole lines only: a run may be writing)."""
    ids = []
    for name in ("accepted.jsonl", "rejected.jsonl"):
        path = out / name
        if path.exists():
            ids += [json.loads(line)["id"] for line in path.read_bytes().split(b"\n")[:-1]]
    return ids


def wait_for_records(out: Path, child: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(record_ids(out)) < count and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert child.poll() is None, f"the run ended before the test could use it: {child.communicate()[1]}"
    assert len(record_ids(out)) >= count


@pytest.fixture
def slow_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency=0.2) as server:
        yield server


def test_a_run_holds_its_directory_a_second_is_refused_and_readers_read_it_meanwhile(
    one_document: Path, tmp_path: Path, slow_server: FakeOpenAIServer
) -> None:
    out = tmp_path / "out"
    first = start_codi_run(one_document, out, slow_server, "--n", 40, "-k", 2)
    try:
        wait_for_records(out, first, 2)
        second = start_codi_run(one_document, out, slow_server, "--n", 40, "-k", 2)
        _, refused = second.communicate(timeout=WAIT_SECONDS)
        assert first.poll() is None, "the second run waited for the first instead of failing at once"
        assert second.returncode == 2, refused
        message = " ".join(refused.split())
        assert f"{out} is being written by another run (pid {first.pid} on " in message
        assert "codi export` and `codi report` can read the directory meanwhile" in message
        holder = current_writer(out)
        assert holder is not None and holder.pid == first.pid

        exported = export_run(out, "openai", tmp_path / "export")  # readers take no lock and wait for nothing
        report = build_report(out)
        assert first.poll() is None
        assert sum(exported.rows.values()) >= 1 and report.overview.conversations >= 2
        assert any(f"A run is still writing {out} (pid {first.pid}" in text for text in report.overview.warnings)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=WAIT_SECONDS)
    assert first.returncode == 130
    ids = record_ids(out)
    assert len(ids) == len(set(ids)) and 2 <= len(ids) < 40  # one writer: no conversation twice
    summary = RunSummary.model_validate_json((out / "summary.json").read_bytes())
    assert summary.status == "interrupted" and summary.finished == len(ids)
    manifest = RunManifest.model_validate_json((out / "manifest.json").read_bytes())
    assert len(manifest.sessions) == 1, "the refused run wrote nothing"
    assert not (out / "errors.jsonl").exists()
    assert current_writer(out) is None


def test_kill_9_leaves_no_stale_lock_and_the_resume_writes_every_planned_conversation_once(
    one_document: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    planned = 12
    with FakeOpenAIServer(latency=0.05) as server:
        child = start_codi_run(one_document, out, server, "--n", planned, "-k", 3)
        try:
            wait_for_records(out, child, 3)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.communicate(timeout=WAIT_SECONDS)
        assert child.returncode == -signal.SIGKILL
        dead = read_holder(out / "run.lock")
        assert dead is not None and dead.pid == child.pid  # the file still names the dead run ...
        assert current_writer(out) is None  # ... but the OS released its lock with the process
        killed_at = len(record_ids(out))
        assert 3 <= killed_at < planned
        main(["run", *codi_run_argv(one_document, out, server, "--n", planned, "-k", 3)])
    capsys.readouterr()
    ids = record_ids(out)
    assert len(ids) == len(set(ids)) == planned
    summary = RunSummary.model_validate_json((out / "summary.json").read_bytes())
    assert summary.status == "completed" and summary.finished == planned
    assert summary.finished_this_session == planned - killed_at
    manifest = RunManifest.model_validate_json((out / "manifest.json").read_bytes())
    assert [session.status for session in manifest.sessions] == ["running", "completed"]
    assert current_writer(out) is None
