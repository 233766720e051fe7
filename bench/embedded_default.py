"""Benchmark of the embedded default: SmolLM2-135M via llama.cpp and the packaged MiniLM embeddings.

Measures, on this machine:
- time to the first conversation in a fresh process (server start + indexing + one 4-turn conversation);
- seconds per 4-turn conversation over several runs (median, min, max) and the acceptance count;
- peak resident memory of codi plus the model server (sampled every 50 ms);
- indexing throughput of the shipped embedding model (passages per second).

Run: `python bench/embedded_default.py [--runs 5]`. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import threading
import time
from pathlib import Path

import psutil

from codi_agents import Document, Settings, load_document, load_persona
from codi_agents.inputs._flows import FlowGraph
from codi_agents.inputs._passages import chunk_document
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
from codi_agents.simulation._session import Session

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "examples" / "docs").glob("*.md"))
SHARED = ROOT.parent / "shared" / "data" / "documents_doc2dial_273.jsonl"
FOUR_TURNS = FlowGraph.model_validate(
    {
        "name": "four_turns",
        "min_turns": 4,
        "max_turns": 4,
        "start": {"opening": 1.0},
        "links": {
            "opening": {"instruction": "Ask your first question about the document.", "next": {"fact": 1.0}},
            "fact": {"instruction": "Ask for one specific fact from the document.", "next": {"follow": 1.0}},
            "follow": {
                "instruction": "Ask a follow-up about the last answer, using a pronoun.",
                "phenomena": ["coreference"],
                "next": {"closing": 1.0},
            },
            "closing": {"kind": "closing", "instruction": "Thank the assistant and end the conversation."},
        },
    }
)


class PeakMemory:
    """Samples the RSS of this process and its children until stopped."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.05)


def indexing_throughput() -> tuple[int, float]:
    """Passages embedded per second by the packaged MiniLM over real documents."""
    rows = [json.loads(line) for line in SHARED.read_text().splitlines()[:40]] if SHARED.exists() else []
    documents = [Document(id=r["doc_id"], title=r["title"], text=r["text"]) for r in rows] or [
        load_document(path) for path in DOCS
    ]
    texts = [passage.text for document in documents for passage in chunk_document(document)]
    embed = MiniLMEmbeddingFunction()
    embed(["warm up"])
    started = time.perf_counter()
    embed(texts)
    return len(texts), len(texts) / (time.perf_counter() - started)


async def conversations(session: Session, runs: int) -> list[tuple[float, bool]]:
    results = []
    personas = ["curious_student", "busy_professional", "journalist", "caregiver", "child"]
    for run in range(runs):
        document = load_document(DOCS[run % len(DOCS)])
        started = time.perf_counter()
        persona = load_persona(personas[run % len(personas)])
        conversation = await session.simulate(document, persona, FOUR_TURNS, seed=run)
        results.append((time.perf_counter() - started, conversation.accepted))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with PeakMemory() as memory:
        started = time.perf_counter()
        with Session(Settings()) as session:
            startup = time.perf_counter() - started
            first = asyncio.run(conversations(session, 1))
            first_total = time.perf_counter() - started
            rest = asyncio.run(conversations(session, args.runs))
    passages, per_second = indexing_throughput()
    seconds = [s for s, _ in rest]
    print("| measure | value |")
    print("|---|---|")
    print(f"| model server start (s) | {startup:.1f} |")
    print(f"| time to first conversation, from session open (s) | {first_total:.1f} |")
    print(
        f"| 4-turn conversation, median of {len(seconds)} (s) | {statistics.median(seconds):.1f} "
        f"(min {min(seconds):.1f}, max {max(seconds):.1f}) |"
    )
    print(f"| accepted by the critic | {sum(ok for _, ok in rest + first)} of {len(rest) + 1} |")
    print(f"| peak RSS, codi + model server (MB) | {memory.peak / 1e6:.0f} |")
    print(f"| MiniLM indexing ({passages} passages, passages/s) | {per_second:.1f} |")


if __name__ == "__main__":
    main()
