"""The embedded default: the real SmolLM2-135M through llama.cpp's server and the real MiniLM embeddings.

These tests start real model servers (no network, no key) and check structure, never wording.
They also check that no server process outlives codi: after a normal run, an exception, Ctrl-C,
or codi being killed outright.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from codi_agents import Conversation, Settings, load_document, load_flow, load_persona, simulate
from codi_agents.errors import LocalModelError
from codi_agents.inputs._flows import FlowGraph
from codi_agents.llm._local_server import LocalModelServer, packaged_model_path
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
from codi_agents.simulation._session import Session

pytestmark = pytest.mark.local_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "docs"
SHORT_FLOW = FlowGraph.model_validate(
    {
        "name": "two_turns",
        "min_turns": 2,
        "max_turns": 2,
        "start": {"ask": 1.0},
        "links": {
            "ask": {"instruction": "Ask one short question about the document.", "next": {"follow": 1.0}},
            "follow": {
                "instruction": "Ask a short follow-up about the answer, using a pronoun.",
                "phenomena": ["coreference"],
                "next": {"end": 1.0},
            },
        },
    }
)


def llama_servers() -> set[int]:
    """Pids of llama.cpp server processes started by this test process (other programs' servers don't count)."""
    found = set()
    for process in psutil.Process().children(recursive=True):
        try:
            cmdline = process.cmdline()
        except psutil.Error:
            continue
        if "codi_agents.llm._llama_child" in cmdline and str(packaged_model_path()) in cmdline:
            found.add(process.pid)
    return found


def wait_gone(pid: int, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def no_stray_servers() -> Iterator[None]:
    before = llama_servers()
    yield
    leftover = llama_servers() - before
    assert not leftover or all(wait_gone(pid) for pid in leftover), f"orphan llama.cpp servers: {leftover}"


def test_one_real_conversation_has_the_right_structure(no_stray_servers: None) -> None:
    document = load_document(EXAMPLES / "ssa_retirement_estimator.md")
    conversation = simulate(document, "curious_student", flow=SHORT_FLOW, seed=3)
    assert conversation.models == dict.fromkeys(("user", "assistant", "critic"), "smollm2-135m-instruct")
    assert conversation.path == ["ask", "follow"]
    users = [t for t in conversation.turns if t.role == "user"]
    assistants = [t for t in conversation.turns if t.role == "assistant"]
    if conversation.accepted:
        assert len(conversation.turns) == 2 * len(conversation.path)
    else:
        assert conversation.rejection is not None and conversation.rejection_reason
        assert len(users) <= len(conversation.path)
    assert [t.link for t in users] == conversation.path[: len(users)]
    for turn in assistants:
        assert turn.passage_ids and all(pid.startswith(f"{document.id}::") for pid in turn.passage_ids)
        assert turn.verdict is not None
        assert {"unsupported_share", "min_similarity"} <= set(turn.verdict.signals)
    assert conversation.usage["user"].requests >= 1
    assert Conversation.model_validate_json(conversation.model_dump_json()) == conversation


def test_prompts_longer_than_the_context_window_are_fitted_not_fatal(no_stray_servers: None) -> None:
    document = load_document(EXAMPLES / "studentaid_loan_deferment.md")
    settings = Settings(seed=1, chunk_size=4000, top_k=4, local_context_window=1024, max_assistant_retries=0)
    with Session(settings, embedding_function=MiniLMEmbeddingFunction()) as session:
        conversation = asyncio.run(session.simulate(document, load_persona("busy_professional"), SHORT_FLOW, seed=1))
    assert conversation.turns
    assert conversation.rejection != "request_rejected", conversation.rejection_reason


def test_server_is_stopped_after_an_exception(no_stray_servers: None) -> None:
    before = llama_servers()
    with pytest.raises(RuntimeError, match="boom"), Session(Settings(), embedding_function=MiniLMEmbeddingFunction()):
        started = llama_servers() - before
        assert len(started) == 1
        raise RuntimeError("boom")
    assert wait_gone(started.pop())


def test_a_server_that_dies_mid_run_is_a_clear_error(no_stray_servers: None) -> None:
    document = load_document(EXAMPLES / "va_apply_gi_bill.md")
    with Session(Settings(), embedding_function=MiniLMEmbeddingFunction()) as session:
        assert session.server is not None and session.server.process is not None
        session.server.process.kill()
        session.server.process.wait()
        with pytest.raises(LocalModelError, match="stopped unexpectedly"):
            asyncio.run(session.simulate(document, load_persona("child"), load_flow("factoid_short"), seed=0))


def test_missing_and_broken_model_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="Model file not found"):
        LocalModelServer(tmp_path / "absent.gguf").start()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really a model" * 10)
    server = LocalModelServer(broken, startup_timeout=60)
    with pytest.raises(LocalModelError, match="exited at start"):
        server.start()
    assert not server.running
    assert server._log is not None
    log = Path(server._log.name)
    assert log.exists()  # kept while the error may still be read
    server.stop()
    assert not log.exists()  # the server's log does not outlive it


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch, no_stray_servers: None) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken])
        real_free_port = __import__("codi_agents.llm._local_server", fromlist=["free_port"]).free_port
        monkeypatch.setattr("codi_agents.llm._local_server.free_port", lambda: next(ports, None) or real_free_port())
        with LocalModelServer() as server:
            assert server.port != taken
            assert server.running
            assert server._log is not None
            log = Path(server._log.name)
        assert not log.exists()


CHILD = textwrap.dedent(
    """
    import sys, time
    from codi_agents import Settings
    from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
    from codi_agents.simulation._session import Session
    mode = sys.argv[1]

    def run():
        with Session(Settings(), embedding_function=MiniLMEmbeddingFunction()) as session:
            print(session.server.process.pid, flush=True)
            if mode == "exit":
                sys.exit(0)
            time.sleep(120)

    if mode == "thread":  # started from a worker thread: no PR_SET_PDEATHSIG, the watchdog must act
        import threading
        threading.Thread(target=run).start()
    else:
        run()
    """
)


@pytest.mark.parametrize(
    ("mode", "stop"),
    [
        ("exit", None),
        ("wait", signal.SIGINT),
        ("wait", signal.SIGTERM),
        ("wait", signal.SIGKILL),
        ("thread", signal.SIGKILL),
    ],
)
def test_no_orphan_server_after_exit_ctrl_c_or_kill(tmp_path: Path, mode: str, stop: signal.Signals | None) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip().isdigit(), child.stderr.read() if child.stderr else ""
    server_pid = int(line)
    assert psutil.pid_exists(server_pid)
    if stop is not None:
        os.kill(child.pid, stop)
    child.wait(timeout=60)
    assert wait_gone(server_pid), f"server {server_pid} outlived codi ({mode}, {stop})"


def test_weights_stay_out_of_amx_buffers_only_on_amx_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp's AMX weight buffers crash batched decoding on Sapphire Rapids (ggml-org/llama.cpp#20824)."""
    import llama_cpp.llama_cpp as native

    from codi_agents.llm._llama_child import keep_weights_out_of_amx

    monkeypatch.setattr(native, "llama_model_default_params", native.llama_model_default_params)
    monkeypatch.setattr(native, "llama_print_system_info", lambda: b"CPU : AVX2 = 1 | AMX_INT8 = 0 | ")
    assert keep_weights_out_of_amx() is False
    assert native.llama_model_default_params().use_extra_bufts is True

    monkeypatch.setattr(native, "llama_print_system_info", lambda: b"CPU : AVX512 = 1 | AMX_INT8 = 1 | ")
    assert keep_weights_out_of_amx() is True
    params = native.llama_model_default_params()
    assert params.use_extra_bufts is False
    assert params.vocab_only is False and params.no_host is False  # every other default is llama.cpp's own
