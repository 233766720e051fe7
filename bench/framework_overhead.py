"""codi's own cost per turn: the whole graph with instant scripted models, in one process.

Every model answers instantly (`codi_agents.testing.scripted_models`), so what is left is codi:
LangGraph, prompt building, Chroma retrieval, the critic's cheap signals and the record. Run with
the deterministic hashing embedding (framework cost) and with the packaged MiniLM (what the real
embedding adds to retrieval and the critic's similarity signals).

Run: `python bench/framework_overhead.py [--turns 200]`. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents import Document, Settings, load_flow, load_persona
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
from codi_agents.simulation._session import Session
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "doc2dial_docs.jsonl"


async def per_turn_ms(embedding: EmbeddingFunction[Documents], turns: int) -> tuple[list[float], int]:
    """Milliseconds per exchange (user + retrieval + assistant + critic), one value per conversation."""
    documents = [Document(id=r["id"], title=r["title"], text=r["text"]) for r in map(json.loads, DATA.open())]
    flow = load_flow("grounded_qa")
    persona = load_persona("curious_student")
    samples: list[float] = []
    done = 0
    with Session(Settings(), models=scripted_models(), embedding_function=embedding) as session:
        passages = {document.id: session.prepare(document) for document in documents}
        await session.simulate(documents[0], persona, flow, seed=0, passages=passages[documents[0].id])  # warm-up
        seed = 1
        while done < turns:
            document = documents[seed % len(documents)]
            started = time.perf_counter()
            conversation = await session.simulate(document, persona, flow, seed=seed, passages=passages[document.id])
            elapsed = time.perf_counter() - started
            samples.append(1000 * elapsed / conversation.exchanges)
            done += conversation.exchanges
            seed += 1
    return samples, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    print("| embedding | turns | median ms/turn | p90 ms/turn |")
    print("|---|---|---|---|")
    for name, embedding in (
        ("hashing (framework only)", HashingEmbeddingFunction()),
        ("MiniLM int8", MiniLMEmbeddingFunction()),
    ):
        samples, turns = asyncio.run(per_turn_ms(embedding, args.turns))
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"| {name} | {turns} | {statistics.median(samples):.2f} | {p90:.2f} |")


if __name__ == "__main__":
    main()
