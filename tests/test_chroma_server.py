"""The Chroma server codi starts: answers, serves a shared index, stops, and never outlives a killed parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from codi_agents import Document
from codi_agents.errors import ConfigError
from codi_agents.inputs._passages import chunk_document
from codi_agents.retrieval import _chroma_server
from codi_agents.retrieval._chroma_server import ChromaServer, ChromaServerError
from codi_agents.retrieval._index import PassageIndex
from codi_agents.testing import HashingEmbeddingFunction

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the death signal is Linux's")
STOP_GRACE = _chroma_server.STOP_TIMEOUT + 2


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_an_index_on_the_started_server_is_shared_and_the_server_stops(tmp_path: Path, document: Document) -> None:
    with ChromaServer(tmp_path / "chroma") as server:
        assert server.url.startswith("http://127.0.0.1:") and server.alive()
        pid = server.process.pid if server.process else -1
        writer = PassageIndex.open(HashingEmbeddingFunction(), url=server.url)
        assert writer.add(document, chunk_document(document)) is True
        writer.flush()  # written to the server (a worker flushes each indexed slice)
        reader = PassageIndex.open(HashingEmbeddingFunction(), url=server.url)  # another client, as another worker
        assert reader.add(document, chunk_document(document)) is False
        found = reader.search(document, ["change of address within ten days"], 1)
        assert found and found[0].doc_id == document.id and found[0].index == 1
    assert _gone(pid, within=STOP_GRACE)
    assert not server.alive()
    assert any((tmp_path / "chroma").iterdir())  # the data stays in the folder


def test_a_taken_port_is_refused_with_its_number(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"Port {port} on 127.0.0.1 is taken.*leave it unset"):
            ChromaServer(tmp_path / "chroma", port=port).start()


def test_a_server_that_exits_is_reported_with_the_end_of_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_chroma_server, "_LAUNCH", "import sys; print('cannot open the database folder'); sys.exit(3)")
    server = ChromaServer(tmp_path / "chroma")
    with pytest.raises(ChromaServerError, match=r"exited with code 3 before it answered.*\n.*cannot open the database"):
        server.start()
    assert server.process is None


def test_a_server_that_never_answers_is_stopped_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_chroma_server, "_LAUNCH", "import time; print('warming up', flush=True); time.sleep(120)")
    started = time.monotonic()
    with pytest.raises(ChromaServerError, match=r"did not answer within 1 s.*\n.*warming up"):
        ChromaServer(tmp_path / "chroma", startup_timeout=1).start()
    assert time.monotonic() - started < 1 + STOP_GRACE


_PARENT = """
import sys, time
from codi_agents.retrieval._chroma_server import ChromaServer
server = ChromaServer(sys.argv[1]).start()
print(server.process.pid, server.url, flush=True)
time.sleep(600)
"""


def test_the_server_dies_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path / "chroma")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert parent.stdout is not None
        pid_text, url = parent.stdout.readline().split()
        server_pid = int(pid_text)
        assert psutil.Process(server_pid).ppid() == parent.pid
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert _gone(server_pid), f"the Chroma server {server_pid} outlived its parent"
        assert not _chroma_server._heartbeat(url)
    finally:
        parent.kill()
