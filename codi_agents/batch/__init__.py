"""Batch runs: a corpus in, a run directory of conversations out (`codi run`, `codi_agents.run`).

The run directory holds `accepted.jsonl` and `rejected.jsonl` (one `Conversation` per line),
`errors.jsonl` (conversations that failed on server errors, retried on resume), `manifest.json`,
`summary.json`, `index/` (the persistent Chroma collection) and `run.lock`, held by the one run writing
the directory (see `codi_agents.rundir`).
"""

from codi_agents.batch._api import arun, iter_conversations, run
from codi_agents.batch._runner import BatchRun
from codi_agents.config._run_config import RunConfig, load_run_config
from codi_agents.errors import RunDirectoryError

__all__ = ["BatchRun", "RunConfig", "RunDirectoryError", "arun", "iter_conversations", "load_run_config", "run"]
