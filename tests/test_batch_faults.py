"""Batch runs against the fake HTTP server: 429 storms, a server that is down, kill -9 and Ctrl-C, secrets, progress."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.console import Console

from codi_agents import iter_conversations, run
from codi_agents._security import mask_secret
from codi_agents.batch._progress import LogProgress, RichProgress, progress_for
from codi_agents.batch._runner import BatchRun
from codi_agents.cli import main
from codi_agents.config._run_config import load_run_config
from codi_agents.config._settings import Settings
from codi_agents.errors import EndpointDownError
from codi_agents.llm._local_server import free_port
from codi_agents.testing import FakeOpenAIServer, Faults, HashingEmbeddingFunction

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "doc2dial_docs.jsonl"
KEY = "sk-codi-test-7f3a9c1e5b2d4f60a8e1"


def argv(*parts: object) -> list[str]:
    """Command-line arguments, as strings."""
    return [str(part) for part in parts]


def codi_run(corpus: Path, out: Path, *options: object) -> None:
    """`codi run CORPUS --out OUT OPTIONS...`, in this process."""
    main(argv("run", corpus, "--out", out, *options))


def fake_endpoint(url: str, key: str | None = None) -> list[str]:
    """The command-line options that point every role at the fake server."""
    return ["--base-url", url, "--model", "codi-fake", *(["--api-key", key] if key else [])]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency=0.01) as running:
        yield running


def endpoint(server_url: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": server_url, "model": "codi-fake", "api_key": KEY, **extra}


def all_ids(out: Path) -> list[str]:
    ids = []
    for name in ("accepted.jsonl", "rejected.jsonl"):
        path = out / name
        if path.exists():
            ids += [json.loads(line)["id"] for line in path.read_text().splitlines()]
    return ids


def planned_ids(n: int, server_url: str) -> list[str]:
    batch = BatchRun(
        CORPUS,
        None,
        config=load_run_config(None, n=n),
        settings=Settings(endpoint=endpoint(server_url)),
        embedding_function=HashingEmbeddingFunction(),
    )
    return [item.id for item in batch.make_plan()]


def test_a_storm_of_429s_is_absorbed(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.set_faults(Faults(rate_limit_first=40, retry_after=0.05))
    summary = run(
        CORPUS,
        tmp_path / "out",
        n=6,
        concurrency=6,
        embedding_function=HashingEmbeddingFunction(),
        endpoint=endpoint(server.base_url, max_retries=12),
    )
    assert summary["status"] == "completed" and summary["finished"] == 6 and summary["errors"] == 0
    assert summary["requests"]["rate_limited"] == 40 == server.stats()["rate_limited"]
    assert summary["accepted"] == 6


def test_a_long_rate_limit_is_waited_out_not_taken_for_a_dead_server(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.set_faults(Faults(rate_limit_first=30, retry_after=0.3))
    config = tmp_path / "run.toml"
    config.write_text("[limits]\nendpoint_down_seconds = 0.1\n")  # far shorter than the storm lasts
    summary = run(
        CORPUS,
        tmp_path / "out",
        config=config,
        n=4,
        concurrency=4,
        embedding_function=HashingEmbeddingFunction(),
        endpoint=endpoint(server.base_url, max_retries=30),
    )
    assert summary["status"] == "completed" and summary["finished"] == 4 and summary["errors"] == 0
    assert summary["requests"]["rate_limited"] == 30


def open_connections_to(port: int) -> int:
    """TCP connections this process holds open to 127.0.0.1:`port`."""
    return sum(
        1
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.raddr and connection.raddr.port == port and connection.status == psutil.CONN_ESTABLISHED
    )


def test_a_finished_run_closes_its_connections_to_the_server(server: FakeOpenAIServer, tmp_path: Path) -> None:
    async def run_and_count() -> tuple[int, int]:
        batch = iter_conversations(
            CORPUS, tmp_path / "out", n=4, concurrency=4,
            embedding_function=HashingEmbeddingFunction(), endpoint=endpoint(server.base_url),
        )  # fmt: skip
        during = 0
        async with batch:
            async for _ in batch:
                during = max(during, open_connections_to(server.port))
        return during, open_connections_to(server.port)

    during, after = asyncio.run(run_and_count())
    assert during > 0  # the count sees the run's keep-alive connections
    assert after == 0  # none left behind for a long-lived process to accumulate


def test_a_server_that_fails_everything_stops_the_run_with_its_answer(
    server: FakeOpenAIServer,
    one_document: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.01)
    server.set_faults(Faults(fail_all_status=503))
    config = tmp_path / "run.toml"
    config.write_text("[limits]\nendpoint_down_seconds = 0.05\n[settings.endpoint]\nmax_retries = 2\n")
    with pytest.raises(SystemExit) as exit_code:
        codi_run(one_document, tmp_path / "out", "--n", "200", "--config", config, *fake_endpoint(server.base_url, KEY))
    assert exit_code.value.code == 1
    err = flat(capsys.readouterr().err)
    assert "have failed for a while; the last answer was: HTTP 503" in err
    assert "the fake server is set to fail every request" in err
    assert server.stats()["requests"] < 200 * 3  # bounded: the run stopped well before trying every conversation
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "stopped"


def test_a_run_stopped_by_a_server_that_quotes_the_key_raises_without_the_key(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.01)
    server.set_faults(Faults(reject_key=True, fail_all_status=503))
    config = tmp_path / "run.toml"
    config.write_text("[limits]\nendpoint_down_seconds = 0.05\n")
    with pytest.raises(EndpointDownError) as stopped:
        run(CORPUS, tmp_path / "out", config=config, n=50, concurrency=4,
            embedding_function=HashingEmbeddingFunction(), endpoint=endpoint(server.base_url, max_retries=1))  # fmt: skip
    shown = "".join(traceback.format_exception(stopped.value))
    assert "Incorrect API key provided" in shown and mask_secret(KEY) in shown  # the answer is kept, masked
    assert KEY not in shown


def test_nothing_listening_is_a_clear_error(
    one_document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.01)
    config = tmp_path / "run.toml"
    config.write_text("[limits]\nendpoint_down_seconds = 0.05\n[settings.endpoint]\nmax_retries = 1\n")
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(SystemExit) as exit_code:
        codi_run(one_document, tmp_path / "out", "--n", "200", "--config", config, *fake_endpoint(url))
    assert exit_code.value.code == 1
    err = flat(capsys.readouterr().err)
    assert url in err and "Connection" in err and "resume the run" in err


def test_a_run_left_incomplete_by_server_errors_exits_non_zero(
    server: FakeOpenAIServer, one_document: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_faults(Faults(server_error_first=1))
    config = tmp_path / "run.toml"
    config.write_text("[settings.endpoint]\nmax_retries = 0\n")
    with pytest.raises(SystemExit) as exit_code:
        codi_run(
            one_document, tmp_path / "out", "--n", "2", "-k", "1", "--config", config, *fake_endpoint(server.base_url)
        )
    assert exit_code.value.code == 1
    printed = capsys.readouterr()
    assert "run incomplete" in printed.out
    assert "1 conversation failed on server errors" in flat(printed.err) and "errors.jsonl" in printed.err
    codi_run(one_document, tmp_path / "out", "--n", "2", "--config", config, *fake_endpoint(server.base_url))
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "completed"
    assert len(all_ids(tmp_path / "out")) == 2


def test_the_cli_never_prints_or_writes_the_key_and_logs_progress_without_a_tty(
    server: FakeOpenAIServer, one_document: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    server.set_faults(Faults(server_error_first=2))
    codi_run(one_document, out, "--n", "3", "-k", "3", *fake_endpoint(server.base_url, KEY))
    printed = capsys.readouterr()
    assert "codi run: 3 conversations planned" in printed.err
    assert "codi run: 3/3 done" in printed.err and "\x1b[" not in printed.err
    assert "run completed" in printed.out and "per persona" in printed.out
    files = [path for path in out.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"accepted.jsonl", "manifest.json", "summary.json"}
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in printed.out + printed.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["critic"] == f"codi-fake @ {server.base_url}"


def test_progress_view_follows_the_terminal() -> None:
    assert isinstance(progress_for(Console(file=open(os.devnull, "w"))), LogProgress)  # noqa: SIM115
    assert isinstance(progress_for(Console(force_terminal=True)), RichProgress)


RUNNER = """
import sys
from codi_agents import iter_conversations, run
from codi_agents.testing import HashingEmbeddingFunction
run(sys.argv[1], sys.argv[2], n=int(sys.argv[3]), concurrency=4, embedding_function=HashingEmbeddingFunction(),
    endpoint={"base_url": sys.argv[4], "model": "codi-fake", "api_key": "fake"})
"""


def test_kill_9_mid_run_then_resume_gives_exactly_the_planned_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(latency=0.05) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(CORPUS), str(out), "24", server.base_url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while len(all_ids(out)) < 4 and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.05)
            assert child.poll() is None, "the run ended before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(timeout=30)
        assert 4 <= len(all_ids(out)) < 24
        with (out / "accepted.jsonl").open("ab") as handle:
            handle.write(b'{"id": "torn", "turns": [{"role": "us')  # what a kill in the middle of a write leaves
        summary = run(
            CORPUS,
            out,
            n=24,
            concurrency=4,
            embedding_function=HashingEmbeddingFunction(),
            endpoint={"base_url": server.base_url, "model": "codi-fake", "api_key": "fake"},
        )
        expected = planned_ids(24, server.base_url)
    ids = all_ids(out)
    assert len(ids) == len(set(ids)) == 24
    assert sorted(ids) == sorted(expected)
    assert summary["finished"] == 24 and summary["status"] == "completed"


def test_ctrl_c_stops_cleanly_with_a_summary(one_document: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(latency=0.2) as server:
        child = subprocess.Popen(
            argv(sys.executable, "-m", "codi_agents", "run", one_document, "--out", out, "--n", 40, "-k", 4)
            + argv("--base-url", server.base_url, "--model", "codi-fake", "--api-key", KEY),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 180
        while len(all_ids(out)) < 2 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert "run interrupted" in stdout and "Interrupted." in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 2 <= summary["finished"] < 40
    assert summary["finished"] == len(all_ids(out))
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert all(path.read_bytes().endswith(b"\n") for path in out.glob("*.jsonl"))
