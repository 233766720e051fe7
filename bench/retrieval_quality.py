"""Does retrieval find the passage a human agent answered from? Joined-text queries against composed ones.

    python bench/retrieval_quality.py [--data ../shared/data] [--top-k 3] [--limit N]

Human Doc2Dial dialogues (`conversations_doc2dial_50.jsonl` and `conversations_doc2dial_dev_200.jsonl`,
reported apart) are replayed turn by turn: each user turn that a human agent answered is searched, with
the human history before it, in its document (chunked and indexed as a run does, packaged MiniLM). The
release has no grounding spans, so the passage the agent answered from is the one holding the largest
share of the agent's content words; turns whose agent reply has fewer than 4 content words, or whose best
passage holds less than 60 % of them (clarifying questions, chit-chat), are left out. Printed per file:
hit@1 and hit@k (the gold passage among the top 1 / top k), for every scored turn and for follow-ups
(turns with history), for three ways of querying:

- `joined`: the three queries embedded as whole texts (message; previous question + message; message +
  the previous answer's first 300 characters): codi's retrieval up to this change;
- `composed`: the same three queries, each made from the vectors of its parts (`retrieval._queries`),
  which a run has already embedded: codi's retrieval now;
- `message`: the user's message alone.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from codi_agents._record import Turn
from codi_agents._sentences import sentences
from codi_agents.critic._text import content_words
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import Passage, chunk_document
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
from codi_agents.retrieval._index import PassageIndex
from codi_agents.retrieval._queries import ANSWER_CONTEXT_CHARS, Query, contextual_queries

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
FILES = ("conversations_doc2dial_50.jsonl", "conversations_doc2dial_dev_200.jsonl")
MIN_AGENT_WORDS = 4
MIN_GOLD_SHARE = 0.6


def joined_queries(message: str, history: Sequence[Turn]) -> list[Query]:
    """The queries as whole texts, as codi built them before composing vectors."""
    previous_question = next((turn.content for turn in reversed(history) if turn.role == "user"), "")
    previous_answer = next((turn.content for turn in reversed(history) if turn.role == "assistant"), "")
    queries: list[Query] = [message]
    if previous_question:
        queries.append(f"{previous_question} {message}")
    if previous_answer:
        queries.append(f"{message} {previous_answer[:ANSWER_CONTEXT_CHARS]}")
    return queries


METHODS: dict[str, Callable[[str, Sequence[Turn]], list[Query]]] = {
    "joined": joined_queries,
    "composed": lambda message, history: contextual_queries(message, history, sentences),
    "message": lambda message, history: [message],
}


def gold_passage(agent_text: str, passages: Sequence[Passage]) -> int | None:
    """Index of the passage holding the largest share of the agent's content words, if it is large enough."""
    words = set(content_words(agent_text))
    if len(words) < MIN_AGENT_WORDS or not passages:
        return None
    shares = [len(words & set(content_words(passage.text))) / len(words) for passage in passages]
    best = max(range(len(passages)), key=shares.__getitem__)
    return passages[best].index if shares[best] >= MIN_GOLD_SHARE else None


def scored_turns(record: dict) -> list[tuple[str, list[Turn], str]]:
    """(user message, history before it, the agent's reply) for each user turn a human agent answered."""
    out = []
    history: list[Turn] = []
    pending: str | None = None
    for turn in record["turns"]:
        text = turn.get("text")
        if turn["role"] == "user":
            pending = text
            pending_history = list(history)
        elif pending and text:
            out.append((pending, pending_history, text))
            pending = None
        if text:
            history.append(Turn(role="user" if turn["role"] == "user" else "assistant", content=text))
    return out


def evaluate(path: Path, index: PassageIndex, top_k: int, limit: int | None) -> dict[str, dict[str, float]]:
    hits = {
        method: {"hit@1": 0, f"hit@{top_k}": 0, "follow-up hit@1": 0, f"follow-up hit@{top_k}": 0} for method in METHODS
    }
    counts = {"turns": 0, "follow-ups": 0}
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    for record in records:
        raw = record["documents"][0]
        document = Document(id=raw["doc_id"], title=raw.get("title") or "", text=raw["text"])
        passages = chunk_document(document)
        index.add(document, passages)
        for message, history, agent in scored_turns(record):
            gold = gold_passage(agent, passages)
            if gold is None:
                continue
            counts["turns"] += 1
            follow_up = bool(history)
            counts["follow-ups"] += follow_up
            for method, build in METHODS.items():
                found = [passage.index for passage in index.search(document, build(message, history), top_k)]
                for k in (1, top_k):
                    hit = gold in found[:k]
                    hits[method][f"hit@{k}"] += hit
                    if follow_up:
                        hits[method][f"follow-up hit@{k}"] += hit
    table = {}
    for method, row in hits.items():
        table[method] = {
            name: value / max(counts["follow-ups" if name.startswith("follow-up") else "turns"], 1)
            for name, value in row.items()
        }
    table["_counts"] = dict(counts)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="Conversations per file.")
    args = parser.parse_args()
    index = PassageIndex.open(MiniLMEmbeddingFunction())
    for name in FILES:
        table = evaluate(args.data / name, index, args.top_k, args.limit)
        counts = table.pop("_counts")
        print(f"\n{name}: {counts['turns']} scored turns, {counts['follow-ups']} follow-ups")
        columns = list(next(iter(table.values())))
        print(f"{'method':10}" + "".join(f"{column:>22}" for column in columns))
        for method, row in table.items():
            print(f"{method:10}" + "".join(f"{row[column]:>22.3f}" for column in columns))
    index.close()


if __name__ == "__main__":
    main()
