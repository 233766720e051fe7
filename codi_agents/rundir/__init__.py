"""The run directory of `codi run`: its layout, its typed files, the lock of the run writing it, and its readers.

`RunDirectory.open(path)` reads one (while a run writes it, too); `RunManifest` and `RunSummary`
are `manifest.json` and `summary.json` as typed models, shared by the writer and every reader.
"""

from codi_agents.errors import RunDirectoryError
from codi_agents.rundir._layout import RunLayout
from codi_agents.rundir._lock import LockHolder, RunLock, current_writer
from codi_agents.rundir._models import RunManifest, RunStatus, RunSummary
from codi_agents.rundir._reader import RunDirectory, TornLineWarning, read_conversations

__all__ = [
    "LockHolder",
    "RunDirectory",
    "RunDirectoryError",
    "RunLayout",
    "RunLock",
    "RunManifest",
    "RunStatus",
    "RunSummary",
    "TornLineWarning",
    "current_writer",
    "read_conversations",
]
