"""Placing the worker actors and building their objects: each failure is an error a user can act on, not a hang.

- the cluster cannot hold the workers within `START_TIMEOUT`: `ClusterError` naming the free resources;
- a worker cannot import the user's plug-in modules: `ConfigError` naming the module and the node;
- a worker cannot build its object (say, a task its packages do not provide): an error naming the worker
  and the cause, a `ConfigError` when the cause is the user's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codi_agents.distributed._cluster import ClusterError, ClusterSpec, WorkerPoolError, import_ray
from codi_agents.distributed._worker import Worker, WorkerInfo
from codi_agents.errors import ConfigError, UserError

START_TIMEOUT = 120.0
"""Seconds for the workers to be placed and answer; on a busy cluster placing takes a while."""


def place_workers(cluster: ClusterSpec, modules: Sequence[str], timeout: float) -> list[tuple[Any, WorkerInfo]]:
    """Start `cluster.workers` actors; each with where it runs, once all answered and imported `modules`."""
    ray = import_ray()

    options: dict[str, Any] = {"num_cpus": cluster.worker_cpus, "max_restarts": 0}
    if cluster.worker_memory:
        options["memory"] = cluster.worker_memory
    actors = [ray.remote(Worker).options(**options).remote() for _ in range(cluster.workers)]
    try:
        infos: list[WorkerInfo] = ray.get([actor.describe.remote(tuple(modules)) for actor in actors], timeout=timeout)
    except ray.exceptions.GetTimeoutError as error:
        for actor in actors:
            ray.kill(actor)
        raise ClusterError(_unplaced_message(cluster, timeout, ray.available_resources())) from error
    placed = list(zip(actors, infos, strict=True))
    failures = [(info, module, error) for info in infos for module, error in info.failed_imports.items()]
    if failures:
        for actor in actors:
            ray.kill(actor)
        where = (f"{module!r} on {info.host} ({info.node_ip}): {error}" for info, module, error in failures)
        lines = "; ".join(dict.fromkeys(where))  # each module and node once, however many workers it has
        raise ConfigError(
            f"Workers cannot import the plug-in task module: {lines}. Install the package that provides it on "
            "every node of the cluster (the same version as here), then start the run again."
        )
    return placed


def set_up(placed: Sequence[tuple[Any, WorkerInfo]], work: tuple[Any, ...]) -> None:
    """Build every worker's object (`Worker.setup(*work)`), all at once; the first failure is raised."""
    ray = import_ray()

    setups = [actor.setup.remote(*work) for actor, _ in placed]
    for (_, info), setup in zip(placed, setups, strict=True):
        try:
            ray.get(setup)
        except ray.exceptions.RayTaskError as error:
            raise _setup_failed(info, error.cause) from error.cause


def _setup_failed(info: WorkerInfo, cause: BaseException | None) -> ConfigError | WorkerPoolError:
    what = f"{type(cause).__name__}: {cause}" if cause is not None else "an unknown error"
    message = (
        f"Worker {info.pid} on {info.host} ({info.node_ip}) could not set up: {what}. Every node needs the same "
        "codi, plug-in packages and settings as this machine (a task registered in code, not through a "
        "package's entry point, is unknown to the workers)."
    )
    return ConfigError(message) if isinstance(cause, UserError) else WorkerPoolError(message)


def _unplaced_message(cluster: ClusterSpec, timeout: float, available: dict[str, float]) -> str:
    wanted = f"{cluster.workers} workers of {cluster.worker_cpus:g} CPUs"
    if cluster.worker_memory:
        wanted += f" and {cluster.worker_memory / 2**30:.1f} GiB"
    free = ", ".join(f"{key} {value:g}" for key, value in sorted(available.items()) if "node:" not in key)
    return (
        f"Ray could not place {wanted} each within {timeout:.0f} s; the cluster has free: "
        f"{free or 'nothing'}. Lower --workers, --worker-cpus or --worker-memory, or add nodes."
    )
