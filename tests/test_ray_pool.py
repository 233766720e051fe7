"""The Ray worker pool on a real local cluster: every item done once, a SIGKILLed worker's chunks redone elsewhere,
clear errors for a missing plug-in, an unplaceable pool and an unreachable cluster.

One cluster (2 CPUs, no dashboard) serves the whole module: starting Ray takes seconds on 2 cores.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from codi_agents.distributed import ClusterError, ClusterSpec, WorkerPool, connect, shutdown  # noqa: E402
from codi_agents.errors import ConfigError  # noqa: E402

CHUNK = 2


def build(spec: dict[str, int]) -> dict[str, int]:
    """The worker's long-lived object: built once per worker from a picklable spec."""
    return {"offset": spec["offset"], "built_in": os.getpid()}


async def process(state: dict[str, int], chunk: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Toy work: a little waiting (like a model request), then the payload plus the worker's offset."""
    await asyncio.sleep(0.05)
    return [(item_id, (state["built_in"], payload + state["offset"])) for item_id, payload in chunk]


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
    with _pool(chunks_in_flight=3) as pool:
        victim, survivor = (slot.info.pid for slot in pool.slots)
        for result in pool.run(items):
            seen.append(result)
            if len(seen) == 6:
                os.kill(victim, signal.SIGKILL)
        stats = pool.stats
    assert len(seen) == len(items)
    assert sorted(item_id for item_id, _ in seen) == sorted(item_id for item_id, _ in items)
    assert stats.lost_workers == [victim] and stats.redispatched >= 1
    assert stats.chunks == len(items) // CHUNK + stats.redispatched  # only the lost chunks were sent again
    after_kill = [pid for _, (pid, _) in seen[6 + 3 * 2 :]]
    assert after_kill and set(after_kill) == {survivor}


def test_a_plug_in_module_a_worker_cannot_import_is_named(cluster: None) -> None:
    pool = _pool(modules=["json", "codi_no_such_plugin_task"])
    with pytest.raises(ConfigError, match=r"cannot import the plug-in task module: 'codi_no_such_plugin_task' on .*"
                       r"No module named 'codi_no_such_plugin_task'.*on every node"):
        pool.start()
    assert pool.slots == []


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
