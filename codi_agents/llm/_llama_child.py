"""The embedded model server's process: llama.cpp's server, which exits when codi is gone.

`python -m codi_agents.llm._llama_child PARENT_PID <llama_cpp.server arguments>` runs the server in
this process and watches the parent: if codi dies in any way (SIGKILL included) the server
exits within a second, whichever thread of codi started it. On CPUs with AMX it also keeps the model's
weights out of llama.cpp's AMX buffers (`keep_weights_out_of_amx`).
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time
from typing import Any

POLL_SECONDS = 0.5


def _exit_when_orphaned(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(POLL_SECONDS)


def keep_weights_out_of_amx() -> bool:
    """On a CPU with AMX, load models without llama.cpp's "extra" weight buffers (AMX, repacked); True if it did.

    With the weights in its AMX buffer, llama.cpp crashes (SIGSEGV in `ggml_backend_amx_mul_mat`) at the first
    decode of more than one token on Sapphire Rapids machines (ggml-org/llama.cpp#20824, open; seen here with
    llama-cpp-python 0.3.36, and in CI). llama.cpp's `--no-repack` turns those buffers off; llama-cpp-python's server
    has no setting for it, so its default model parameters are wrapped. Without AMX nothing changes.
    """
    import llama_cpp.llama_cpp as native

    if b"AMX_INT8 = 1" not in native.llama_print_system_info():
        return False
    defaults = native.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    native.llama_model_default_params = without_extra_buffers
    return True


def main() -> None:
    """Start the watchdog, then hand the rest of the arguments to `python -m llama_cpp.server`."""
    parent = int(sys.argv[1])
    sys.argv = ["llama_cpp.server", *sys.argv[2:]]
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="codi-parent-watch").start()
    keep_weights_out_of_amx()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
