"""Work spread over Ray worker processes, on this machine or a cluster; Ray is imported only when used.

- `ClusterSpec`: a local cluster of N workers, or the address of one to join (`RAY_ADDRESS`, `auto`).
- `WorkerPool`: worker actors holding a long-lived object built from a picklable spec; the driver hands
  out small chunks, collects results as they finish and re-dispatches the chunks of a worker that died
  or hung; a `Coordinator` exchanges small messages with the workers while they work.
"""

from codi_agents.distributed._cluster import ClusterError, ClusterSpec, WorkerPoolError, connect, shutdown
from codi_agents.distributed._exchange import Coordinator
from codi_agents.distributed._pool import PoolStats, WorkerPool
from codi_agents.distributed._worker import Item, Result, WorkerInfo

__all__ = [
    "ClusterError",
    "ClusterSpec",
    "Coordinator",
    "Item",
    "PoolStats",
    "Result",
    "WorkerInfo",
    "WorkerPool",
    "WorkerPoolError",
    "connect",
    "shutdown",
]
