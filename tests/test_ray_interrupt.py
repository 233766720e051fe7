"""`codi run --workers 2` in a child process, as a user runs it: Ctrl-C, and a plug-in task the workers lack.

- SIGINT to the driver mid-run: the driver exits by itself (exit code 130), every process it started
  (Ray's, the workers, the Chroma server) is gone, the run directory is marked interrupted and unlocked,
  and running the same command again writes every planned conversation exactly once.
- A plug-in task the driver can import but the workers cannot: a clear error at start, not a hang.

Each test starts its own local Ray cluster in its child process (never in the test process). The child
uses the packaged embedding model, as the command line does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from codi_agents import iter_conversations  # noqa: E402
from codi_agents.rundir._lock import RunLock  # noqa: E402
from codi_agents.rundir._models import RunManifest, RunSummary  # noqa: E402
from codi_agents.testing import FakeOpenAIServer  # noqa: E402

CORPUS = Path(__file__).parent / "data" / "doc2dial_docs.jsonl"
PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin_task"
N = 24


def checkout_env() -> dict[str, str]:
    """The environment of a child driver: this checkout of codi first (its workers inherit it)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}


def written_ids(out: Path) -> list[str]:
    ids = []
    for name in ("accepted.jsonl", "rejected.jsonl"):
        path = out / name
        if path.exists():
            ids += [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]
    return ids


def codi_run(out: Path, server: FakeOpenAIServer, *more: str) -> list[str]:
    """The command line of a 2-worker run against the fake server."""
    return [sys.executable, "-m", "codi_agents", "run", str(CORPUS), "--out", str(out), "--workers", "2",
            "--n", str(N), "-k", "8", "--base-url", server.base_url, "--model", "codi-fake", "--api-key", "sk-test",
            *more]  # fmt: skip


def wait_for_records(out: Path, driver: subprocess.Popen[str], count: int, deadline: float = 600) -> None:
    """Wait until `count` conversations are on disk (the driver is mid-run), or fail if it ended first."""
    give_up = time.monotonic() + deadline
    while len(written_ids(out)) < count:
        if driver.poll() is not None:
            pytest.fail(f"the driver ended before it wrote {count} conversations: {driver.communicate()[1][-3000:]}")
        if time.monotonic() > give_up:
            os.killpg(driver.pid, signal.SIGKILL)
            pytest.fail(f"the driver wrote no {count} conversations in {deadline:.0f} s")
        time.sleep(0.2)


def test_ctrl_c_stops_the_driver_cleanly_and_a_resume_writes_each_conversation_once(
    tmp_path: Path, left_running: Callable[[Sequence[int]], list[int]]
) -> None:
    out = tmp_path / "run"
    with FakeOpenAIServer(latency=0.3) as server:
        driver = subprocess.Popen(
            codi_run(out, server), env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # SIGINT reaches the driver only, not Ray's processes beside it
        )  # fmt: skip
        wait_for_records(out, driver, 2)
        started = psutil.Process(driver.pid).children(recursive=True)
        names = sorted({process.name() for process in started})
        assert {"raylet", "gcs_server"} <= set(names) and len([n for n in names if "Worker" in n]) >= 1
        driver.send_signal(signal.SIGINT)
        try:
            _, stderr = driver.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)
            pytest.fail("the driver did not stop within 180 s of Ctrl-C")
        assert driver.returncode == 130 and "Interrupted." in stderr, stderr[-3000:]
        assert "Traceback" not in stderr
        assert not left_running([process.pid for process in started]), f"left behind after Ctrl-C, of {names}"
        interrupted = len(written_ids(out))
        assert 2 <= interrupted < N and len(set(written_ids(out))) == interrupted
        manifest = RunManifest.model_validate(json.loads((out / "manifest.json").read_text()))
        assert manifest.status == "interrupted"
        lock = RunLock(out)
        lock.acquire()  # released by the interrupted driver
        lock.release()

        resumed = subprocess.run(codi_run(out, server), env=checkout_env(), capture_output=True, text=True, timeout=900)
        planned = iter_conversations(
            CORPUS, None, n=N, concurrency=8, workers=2,
            endpoint={"base_url": server.base_url, "model": "codi-fake", "api_key": "sk-test"},
        ).make_plan()  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = RunSummary.model_validate(json.loads((out / "summary.json").read_text()))
    assert summary.status == "completed" and summary.finished == N and summary.finished_this_session == N - interrupted
    ids = written_ids(out)
    assert len(ids) == len(set(ids)) == N
    assert sorted(ids) == sorted(item.id for item in planned)


def test_a_plug_in_task_the_workers_cannot_import_is_a_clear_error_at_start(tmp_path: Path) -> None:
    from test_plugin_task import install_files

    site = tmp_path / "site"  # the plug-in, on the driver's sys.path only: not in PYTHONPATH, so not the workers'
    site.mkdir()
    install_files(site)
    declared = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]["entry-points"]["codi_agents.tasks"]
    assert declared == {"tutoring": "codi_tutoring:task"}
    driver = f"import sys; sys.path.insert(0, {str(site)!r}); from codi_agents.cli import main; main()"
    out = tmp_path / "run"
    with FakeOpenAIServer() as server:
        result = subprocess.run(
            [sys.executable, "-c", driver, "run", str(CORPUS), "--out", str(out), "--task", "tutoring",
             "--workers", "2", "--n", "4", "--base-url", server.base_url, "--model", "codi-fake", "--api-key", "k"],
            env=checkout_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        assert server.stats().get("requests", 0) == 0  # nothing was simulated
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "Workers cannot import the plug-in task module: 'codi_tutoring'" in message
    assert "No module named 'codi_tutoring'" in message and "on every node" in message
    assert written_ids(out) == []
    lock = RunLock(out)
    lock.acquire()  # the directory is usable: install the plug-in on the workers, run again
    lock.release()
