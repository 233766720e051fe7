"""The pool of one-input ONNX runs that the embedder and the checkers share."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from codi_agents.checkers._onnx import ParallelRuns, shared_runs


def test_models_called_at_once_never_run_more_inputs_at_once_than_the_pool_has_threads() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def run(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return item * 2

    embedder_runs, detector_runs = shared_runs(2), shared_runs(2)
    with ThreadPoolExecutor(4) as callers:
        futures = [
            callers.submit(pool.map, run, list(range(i, i + 6)))
            for i, pool in enumerate([embedder_runs, detector_runs] * 2)
        ]
        results = [future.result() for future in futures]
    assert most == 2
    assert results == [[2 * j for j in range(i, i + 6)] for i in range(4)]


def test_a_failing_run_reaches_the_caller() -> None:
    def run(item: int) -> int:
        if item == 3:
            raise ValueError("bad input")
        return item

    with pytest.raises(ValueError, match="bad input"):
        ParallelRuns(2).map(run, [1, 2, 3, 4])
