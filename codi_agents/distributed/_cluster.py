"""Start a local Ray cluster or join one, failing fast with an error a user can act on.

Ray is imported here only, and only when a cluster is asked for: a run without workers never
imports it. A local cluster listens on 127.0.0.1 only (it serves this machine; nothing else can
reach its ports). Joining an address first checks, with a timeout, that something answers there,
because `ray.init` on an unreachable address retries for minutes.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from codi_agents.errors import ConfigError, RunError

CONNECT_TIMEOUT = 30.0
"""Seconds to reach a cluster's head before giving up."""
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""Shared memory for a local cluster's object store: chunks of ids and records are small."""
DEFAULT_GCS_PORT = 6379


class ClusterError(RunError):
    """The Ray cluster could not be reached, or workers could not be placed on it."""


class WorkerPoolError(RunError):
    """The work could not be finished on the cluster: every worker died, the work function failed or hung."""


class ClusterSpec(BaseModel):
    """Where the workers run: a local cluster of `workers` processes, or the cluster at `address`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(default=2, ge=1, description="Worker actors to start.")
    address: str | None = Field(
        default_factory=lambda: os.environ.get("RAY_ADDRESS") or None,
        description="A cluster to join: host:port of its head, `auto` for the cluster this node belongs to, "
        "or ray://host:port; defaults to RAY_ADDRESS. None starts a local cluster.",
    )
    worker_cpus: float = Field(default=1.0, gt=0, description="CPUs Ray reserves for each worker.")
    worker_memory: int | None = Field(default=None, gt=0, description="Bytes of memory Ray reserves per worker.")
    connect_timeout: float = Field(default=CONNECT_TIMEOUT, gt=0, description="Seconds to reach the cluster.")

    @property
    def local(self) -> bool:
        """True when codi starts the cluster itself, on this machine."""
        return self.address is None


def connect(spec: ClusterSpec) -> dict[str, Any]:
    """Start or join the cluster `spec` names; return Ray's view of its resources."""
    ray = import_ray()
    if spec.address is not None:
        _check_reachable(spec.address, spec.connect_timeout)
    if ray.is_initialized():
        return dict(ray.cluster_resources())
    if spec.local:
        ray.init(
            num_cpus=max(1, round(spec.workers * spec.worker_cpus)),
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            _node_ip_address="127.0.0.1",
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
        return dict(ray.cluster_resources())
    address = str(spec.address)
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, TimeoutError, RuntimeError) as error:
        raise ClusterError(
            f"Could not join the Ray cluster at {address!r}: {error}. Start it with `ray start --head` on the head "
            "node (and `ray start --address HEAD:6379` on the others), or correct --ray-address / RAY_ADDRESS."
        ) from error
    return dict(ray.cluster_resources())


def import_ray() -> Any:
    """The `ray` module (untyped for mypy), or an error that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ConfigError(
            "Running with workers needs Ray, which is not installed. Install it with "
            "`pip install 'codi-agents[ray]'` (on every node of a cluster)."
        ) from error
    return ray


def shutdown() -> None:
    """Leave the cluster (and stop it when codi started it); safe to call when Ray was never started."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _check_reachable(address: str, timeout: float) -> None:
    """Refuse, within `timeout`, an address where nothing listens (`auto` is resolved by Ray itself)."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.removeprefix("ray://").removeprefix("http://").rstrip("/")
    host, _, port_text = hostport.rpartition(":")
    if not host:
        host, port_text = hostport, str(DEFAULT_GCS_PORT)
    if not port_text.isdigit():
        raise ConfigError(f"Ray address {address!r} is not valid; use host:port, ray://host:port or auto.")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=timeout):
            pass
    except OSError as error:
        raise ClusterError(
            f"The Ray cluster at {address!r} is unreachable ({error.strerror or error}; waited up to "
            f"{timeout:.0f} s). Start it with `ray start --head`, or correct --ray-address / RAY_ADDRESS."
        ) from error
