"""Training-ready datasets from a run directory: OpenAI chat JSONL, ShareGPT, Hugging Face, DPO pairs.

    from codi_agents.export import ExportOptions, export_run
    export_run("runs/dmv", "hf", "datasets/dmv", ExportOptions(validation_ratio=0.1, min_score=0.6))

`RunDirectory` reads a run's files (streaming, with errors that name the file and line); the
report uses it too.
"""

from codi_agents.errors import ExportError, RunDirectoryError
from codi_agents.export._formats import FORMATS, ExportFormat, export_task, hf_features, training_messages
from codi_agents.export._selection import ExportOptions, conversation_score, split_documents
from codi_agents.export._write import ExportResult, export_run
from codi_agents.rundir import RunDirectory, TornLineWarning, read_conversations

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportFormat",
    "ExportOptions",
    "ExportResult",
    "RunDirectory",
    "RunDirectoryError",
    "TornLineWarning",
    "conversation_score",
    "export_run",
    "export_task",
    "hf_features",
    "read_conversations",
    "split_documents",
    "training_messages",
]
