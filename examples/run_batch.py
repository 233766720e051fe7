"""Run a small batch over a folder of documents, read what it wrote, and resume it.

    python examples/run_batch.py [OUT_DIR]        # default: runs/example

The run (examples/run.toml) plans three conversations over examples/docs, writes each one to
OUT_DIR/accepted.jsonl or OUT_DIR/rejected.jsonl as soon as it finishes, and OUT_DIR/summary.json
at the end. Running it again resumes: what is on disk is skipped, nothing is done twice.
With no endpoint configured this runs offline on the embedded default model (a few minutes on a
laptop CPU; the 135M model's conversations are mostly rejected, which the summary says honestly).
Set CODI_BASE_URL, CODI_API_KEY and CODI_MODEL to use your own server.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents import run
from codi_agents.export import read_conversations
from codi_agents.llm._models import ModelsArgument

EXAMPLES = Path(__file__).parent
DOCS = EXAMPLES / "docs"
CONFIG = EXAMPLES / "run.toml"


def main(
    out: Path | str = "runs/example",
    models: ModelsArgument = None,
    embedding_function: EmbeddingFunction[Documents] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the batch into `out` and print what it produced; return the run's summary."""
    out = Path(out)
    summary = run(DOCS, out, config=CONFIG, models=models, embedding_function=embedding_function)
    rate = summary["acceptance_rate"]
    print(
        f"{summary['planned']} planned, {summary['accepted']} accepted, {summary['rejected']} rejected"
        + (f" ({rate:.0%} accepted)" if rate is not None else "")
    )
    for reason in summary["rejection_reasons"]:
        print(f"  rejected as {reason['reason']}: {reason['count']}")

    # The records are plain JSONL; read_conversations gives them back as validated `Conversation`s.
    for name in ("accepted", "rejected"):
        path = out / f"{name}.jsonl"
        if not path.exists():
            continue
        for conversation in read_conversations(path):
            question = next((turn.content for turn in conversation.turns if turn.role == "user"), "")
            about = f"{conversation.persona.name}, {conversation.exchanges} exchanges"
            print(f"{name}: {conversation.id} [{about}] {question}")

    # Running the same command again resumes the run: every finished id is skipped.
    again = run(DOCS, out, config=CONFIG, models=models, embedding_function=embedding_function)
    print(f"resumed: {again['finished_this_session']} new conversations, {again['finished']} on disk")
    return summary


if __name__ == "__main__":
    main(*sys.argv[1:2])
