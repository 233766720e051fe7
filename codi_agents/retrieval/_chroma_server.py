"""A Chroma server codi starts for a local cluster, so that every worker shares one passage index.

`chroma run --path DIR --port P` (the CLI the chromadb package ships) runs in a child process on a
free port of the loopback interface; `start()` returns once its heartbeat answers. It is stopped by
`stop()`, by leaving the `with` block, at interpreter exit, and, on Linux, by the kernel when the
process that started it dies, even by SIGKILL (`PR_SET_PDEATHSIG`): a killed run never leaves a server
holding the port and the folder. The death signal follows the *thread* that started the child, so
start the server from the main thread or one that lives as long as the run. Elsewhere than Linux only
`stop()` and the exit hook stop it.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from codi_agents.errors import ConfigError, RunError

HEARTBEAT = "/api/v2/heartbeat"
STARTUP_TIMEOUT = 60.0
"""Seconds to wait for the heartbeat; the first start on a slow machine takes a few seconds."""
STOP_TIMEOUT = 10.0
TAIL_BYTES = 2000
"""How much of the server's output an error message quotes."""
_PR_SET_PDEATHSIG = 1
_LAUNCH = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"
"""`chroma run` from this interpreter's chromadb (the `chroma` script may not be on PATH)."""


class ChromaServerError(RunError):
    """The Chroma server did not start or stopped answering."""


class ChromaServer:
    """`chroma run` in a child process on `host:port` (a free port when none is given), data in `path`."""

    def __init__(
        self,
        path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def url(self) -> str:
        """The server's address, for `PassageIndex.open(url=...)` and `chroma_url`."""
        if self.port is None:
            raise ChromaServerError("The Chroma server has not been started; call start() first.")
        return f"http://{self.host}:{self.port}"

    def start(self) -> ChromaServer:
        """Start the server and wait for its heartbeat; an error with the server's output if it does not come."""
        return self.launch().wait_until_ready()

    def launch(self) -> ChromaServer:
        """Start the server's process without waiting for it (do other work, then `wait_until_ready`)."""
        if self.process is not None:
            return self
        self.port = _free_port(self.host) if self.port is None else _check_free(self.host, self.port)
        self.path.mkdir(parents=True, exist_ok=True)
        handle, log = tempfile.mkstemp(prefix="codi-chroma-", suffix=".log")
        self._log = Path(log)
        command = [sys.executable, "-c", _LAUNCH, "run", "--path", str(self.path), "--host", self.host]
        with os.fdopen(handle, "wb") as output:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 -- only a prctl call, see _die_with_parent
            )
        atexit.register(self.stop)
        return self

    def wait_until_ready(self) -> ChromaServer:
        """Wait for the launched server's heartbeat; stopped, with its output in the error, if it does not come."""
        try:
            self._wait_for_heartbeat()
        except BaseException:
            self.stop(keep_log=True)
            raise
        return self

    def alive(self) -> bool:
        """True while the server answers its heartbeat."""
        return self.process is not None and self.process.poll() is None and _heartbeat(self.url)

    def stop(self, *, keep_log: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `STOP_TIMEOUT`); safe to call twice."""
        atexit.unregister(self.stop)
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None and not keep_log:
            self._log.unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> ChromaServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_for_heartbeat(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        process = self.process
        while process is not None and time.monotonic() < deadline:
            if process.poll() is not None:
                raise ChromaServerError(
                    f"The Chroma server on {self.url} exited with code {process.returncode} before it answered."
                    f" Its output ends with:\n{self._tail()}"
                )
            if _heartbeat(self.url):
                return
            time.sleep(0.1)
        raise ChromaServerError(
            f"The Chroma server on {self.url} did not answer within {self.startup_timeout:.0f} s. "
            f"Its output ends with:\n{self._tail()}"
        )

    def _tail(self) -> str:
        if self._log is None or not self._log.exists():
            return "(no output)"
        data = self._log.read_bytes()[-TAIL_BYTES:]
        return data.decode("utf-8", errors="replace").strip() or "(no output)"


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + HEARTBEAT, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _free_port(host: str) -> int:
    """A port the system has free now (the server binds it a moment later; a race is reported as a start error)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _check_free(host: str, port: int) -> int:
    """`port`, or a `ConfigError` naming it when something listens there already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in {errno.EADDRINUSE, errno.EACCES}:
                raise ConfigError(
                    f"Port {port} on {host} is taken ({error.strerror}); choose another port for the Chroma server "
                    "or leave it unset to use a free one."
                ) from error
            raise
    return port


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A pre-exec function that asks Linux to SIGTERM the child when its parent dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)  # loaded before fork

    def arrange() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would signal us
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange
