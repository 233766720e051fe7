"""The Ray worker pool on a real local cluster: every item done once, a SIGKILLed worker's chunks redone elsewhere,
messages exchanged with the workers while they work, work that hangs stopped, clear errors for a missing
plug-in, a worker that cannot set up, an unplaceable pool and an unreachable cluster.

One cluster (2 CPUs, no dashboard) serves the whole module: starting Ray takes seconds on 2 cores.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from codi_agents.distributed import (  # noqa: E402
    ClusterError,
    ClusterSpec,
    WorkerPool,
    WorkerPoolError,
    connect,
    shutdown,
)
from codi_agents.errors import ConfigError  # noqa: E402

CHUNK = 2


def build(spec: dict[str, int]) -> dict[str, int]:
    """The worker's long-lived object: built once per worker from a picklable spec."""
    return {"offset": spec["offset"], "built_in": os.getpid()}


async def process(state: dict[str, int], chunk: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Toy work: a little waiting (like a model request), then the payload plus the worker's offset."""
    await asyncio.sleep(0.05)
    return [(item_id, (state["built_in"], payload + state["offset"])) for item_id, payload in chunk]


def echo(state: dict[str, int], message: int) -> tuple[int, int]:
    """The worker's side of the driver's messages: who answers, and what it was told."""
    return state["built_in"], message


class Recorder:
    """A coordinator that numbers its messages and keeps every reply and every lost worker."""

    def __init__(self) -> None:
        self.sent = 0
        self.replies: list[tuple[int, tuple[int, int]]] = []
        self.lost_workers: list[int] = []

    def message(self, worker: int) -> int:
        self.sent += 1
        return self.sent

    def reply(self, worker: int, reply: tuple[int, int]) -> None:
        self.replies.append((worker, reply))

    def lost(self, worker: int) -> None:
        self.lost_workers.append(worker)


async def hang_on_item_3(state: dict[str, int], chunk: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Toy work that blocks its worker for good on one item (the work itself hangs, wherever it runs)."""
    if any(item_id == "item-3" for item_id, _ in chunk):
        time.sleep(3600)
    return await process(state, chunk)


def fail_to_build(spec: dict[str, int]) -> None:
    raise ConfigError("the worker's settings name no endpoint")


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the test module
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(sys.path)  # the workers import this checkout of codi
    try:
        connect(ClusterSpec(workers=2))
        yield
    finally:
        shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _pool(**options: Any) -> WorkerPool:
    settings: dict[str, Any] = {"build": build, "spec": {"offset": 1000}, "process": process, "chunk_size": CHUNK}
    return WorkerPool(ClusterSpec(workers=options.pop("workers", 2)), **(settings | options))


def test_every_item_is_done_once_by_workers_holding_their_object(cluster: None) -> None:
    items = [(f"item-{n}", n) for n in range(40)]
    with _pool() as pool:
        placement = pool.slots
        results = list(pool.run(items))
    assert sorted(item_id for item_id, _ in results) == sorted(item_id for item_id, _ in items)
    assert all(value == int(item_id.split("-")[1]) + 1000 for item_id, (_, value) in results)
    assert {pid for _, (pid, _) in results} == {slot.info.pid for slot in placement}  # both workers worked
    assert pool.stats.chunks == len(items) // CHUNK and pool.stats.redispatched == 0


def test_a_worker_killed_with_sigkill_has_its_chunks_done_by_the_other(cluster: None) -> None:
    items = [(f"item-{n}", n) for n in range(60)]
    seen: list[tuple[str, Any]] = []
    recorder = Recorder()
    with _pool(chunks_in_flight=3, exchange=echo, coordinator=recorder) as pool:
        victim, survivor = (slot.info.pid for slot in pool.slots)
        for result in pool.run(items):
            seen.append(result)
            if len(seen) == 6:
                os.kill(victim, signal.SIGKILL)
        stats = pool.stats
    assert recorder.lost_workers == [0]  # the coordinator hears of the dead worker, once
    assert {(worker, pid) for worker, (pid, _) in recorder.replies} <= {(0, victim), (1, survivor)}
    assert (1, survivor) in {(worker, pid) for worker, (pid, _) in recorder.replies}
    assert all(number <= recorder.sent for _, (_, number) in recorder.replies)
    assert len(seen) == len(items)
    assert sorted(item_id for item_id, _ in seen) == sorted(item_id for item_id, _ in items)
    assert stats.lost_workers == [victim] and stats.redispatched >= 1
    assert stats.chunks == len(items) // CHUNK + stats.redispatched  # only the lost chunks were sent again
    after_kill = [pid for _, (pid, _) in seen[6 + 3 * 2 :]]
    assert after_kill and set(after_kill) == {survivor}


def test_a_plug_in_module_a_worker_cannot_import_is_named(cluster: None) -> None:
    pool = _pool(modules=["json", "codi_no_such_plugin_task"])
    with pytest.raises(
        ConfigError,
        match=r"cannot import the plug-in task module: 'codi_no_such_plugin_task' on .*"
        r"No module named 'codi_no_such_plugin_task'.*on every node",
    ):
        pool.start()
    assert pool.slots == []


def test_a_worker_that_cannot_set_up_is_named_with_the_cause(cluster: None) -> None:
    pool = _pool(build=fail_to_build)
    with pytest.raises(
        ConfigError,
        match=r"Worker \d+ on .* could not set up: ConfigError: the worker's settings "
        r"name no endpoint\. Every node needs the same codi, plug-in packages and settings",
    ):
        pool.start()
    assert pool.slots == []


def test_work_that_hangs_on_every_worker_stops_the_run_and_the_hung_workers(
    cluster: None, left_running: Callable[[Sequence[int]], list[int]]
) -> None:
    items = [(f"item-{n}", n) for n in range(8)]
    seen: list[tuple[str, Any]] = []
    with _pool(process=hang_on_item_3, chunk_timeout=3) as pool:
        pids = [slot.info.pid for slot in pool.slots]
        with pytest.raises(
            WorkerPoolError,
            match=r"starting with item 'item-\d' \(2 items\) was not done within 3 s "
            r"on 2 workers in turn, which were stopped: some of the work hangs",
        ):
            seen.extend(pool.run(items))
        stats = pool.stats
    assert sorted(stats.hung_workers) == sorted(pids) and stats.redispatched >= 1
    assert not left_running(pids)  # killed, not left behind


def test_workers_the_cluster_cannot_hold_are_an_error_not_a_hang(cluster: None) -> None:
    pool = _pool(workers=3, start_timeout=3)
    with pytest.raises(ClusterError, match=r"could not place 3 workers of 1 CPUs each within 3 s.*Lower --workers"):
        pool.start()


def test_an_unreachable_cluster_is_an_error_within_the_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and closed again: nothing listens there
    with pytest.raises(ClusterError, match=rf"at '127.0.0.1:{port}' is unreachable.*ray start --head"):
        connect(ClusterSpec(address=f"127.0.0.1:{port}", connect_timeout=2))


def test_the_address_comes_from_ray_address_and_a_malformed_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "head-node:6379")
    assert ClusterSpec().address == "head-node:6379" and not ClusterSpec().local
    monkeypatch.delenv("RAY_ADDRESS")
    assert ClusterSpec().local
    with pytest.raises(ConfigError, match=r"Ray address 'head-node:ray' is not valid; use host:port"):
        connect(ClusterSpec(address="head-node:ray"))
