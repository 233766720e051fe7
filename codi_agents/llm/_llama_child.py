"""The embedded model server's process: llama.cpp's server, which exits when codi is gone.

`python -m codi_agents.llm._llama_child PARENT_PID <llama_cpp.server arguments>` runs the server in
this process and watches the parent: if codi dies in any way (SIGKILL included) the server
exits within a second, whichever thread of codi started it.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

POLL_SECONDS = 0.5


def _exit_when_orphaned(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(POLL_SECONDS)


def main() -> None:
    """Start the watchdog, then hand the rest of the arguments to `python -m llama_cpp.server`."""
    parent = int(sys.argv[1])
    sys.argv = ["llama_cpp.server", *sys.argv[2:]]
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="codi-parent-watch").start()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
