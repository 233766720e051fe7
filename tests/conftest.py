"""Shared fixtures: no network, no keys, no config file from the developer's machine."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from codi_agents import Document, Settings
from codi_agents.simulation._session import Session
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

DATA = Path(__file__).parent / "data"

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # A shell that starts the tests in the background (`pytest &`, nohup) ignores Ctrl-C, and child processes
    # inherit an ignored signal: the tests that press Ctrl-C on a `codi run` would see it run to its end. With a
    # handler here, children start with the default again.
    signal.signal(signal.SIGINT, signal.default_int_handler)


class NetworkRefusedError(RuntimeError):
    """A test tried to reach a host other than this machine."""


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """Refuse every connection that leaves this machine: tests talk to fake servers on 127.0.0.1 only."""
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(address: Any) -> None:
        if not _is_loopback(address):
            raise NetworkRefusedError(f"Tests may only connect to loopback, not {address!r}: use a fake server.")

    def connect(self: socket.socket, address: Any) -> None:
        guard(address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard(address)
        return original_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = original_connect, original_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's keys, endpoints, codi.toml or index cache: each test has its own cache."""
    for name in list(__import__("os").environ):
        if name.startswith(("OPENAI_", "CODI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODI_CACHE_DIR", str(tmp_path / "codi-cache"))
    monkeypatch.chdir(tmp_path)


def load_jsonl_documents(name: str) -> list[Document]:
    """Documents from a JSONL file in tests/data."""
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    return [Document(id=row["id"], title=row["title"], text=row["text"]) for row in rows]


@pytest.fixture
def document() -> Document:
    """A real Doc2Dial document (NY DMV help page)."""
    return load_jsonl_documents("doc2dial_docs.jsonl")[0]


@pytest.fixture
def wiki_document() -> Document:
    """A real QuAC Wikipedia section."""
    return load_jsonl_documents("quac_docs.jsonl")[0]


@pytest.fixture
def one_document(tmp_path: Path) -> Path:
    """A corpus of one short document: the CLI indexes it with the real MiniLM embeddings."""
    path = tmp_path / "one.jsonl"
    row = json.loads((DATA / "doc2dial_docs.jsonl").read_text().splitlines()[0])
    path.write_text(json.dumps({**row, "text": row["text"][:1500]}) + "\n")
    return path


@pytest.fixture
def embedding() -> HashingEmbeddingFunction:
    """Deterministic embeddings, no model."""
    return HashingEmbeddingFunction()


@pytest.fixture
def settings() -> Settings:
    """Default settings with a fixed seed."""
    return Settings(seed=7)


@pytest.fixture
def session(settings: Settings, embedding: HashingEmbeddingFunction):  # type: ignore[no-untyped-def]
    """An open session with scripted models and hashing embeddings."""
    with Session(settings, models=scripted_models(), embedding_function=embedding) as opened:
        yield opened


@pytest.fixture
def left_running() -> Callable[[Sequence[int]], list[int]]:
    """A function: those of some process ids still running after up to a minute (a killed Ray worker or a
    stopped server takes a moment to end). For tests that check nothing is left behind."""
    psutil = pytest.importorskip("psutil")

    def still_running(pids: Sequence[int]) -> list[int]:
        processes = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                processes.append(psutil.Process(pid))
        _, alive = psutil.wait_procs(processes, timeout=60)
        return [process.pid for process in alive if process.status() != psutil.STATUS_ZOMBIE]

    return still_running
