"""How often the critic's answerability test says the passages hold the answer to a real user question.

The critic counts a question as answerable by the passages it was shown when they contain half of its
content words (`question_coverage_answerable`) and one of their sentences is close to it
(`question_support_answerable`, a cosine). This bench sets the second by what it does on real questions:
every user turn of the Doc2Dial dev conversations is asked of its own document's top 3 passages and of
another document's (the same ranking the passage index uses), and the share counted answerable is printed
at several thresholds, for the critic's passage-sentence vectors. A useful threshold counts most questions
answerable by their own document and almost none by another's.

Usage: python bench/answerability.py [--conversations FILE] [--thresholds 0.5 0.52 0.55 0.6]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from codi_agents import Document
from codi_agents.critic._text import content_words
from codi_agents.inputs._passages import chunk_document
from codi_agents.retrieval._document_vectors import rank
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
from codi_agents.retrieval._index import CANDIDATES_PER_K

DEFAULT_CONVERSATIONS = Path(__file__).parents[1].parent / "shared" / "data" / "conversations_doc2dial_dev_200.jsonl"
TOP = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=Path, default=DEFAULT_CONVERSATIONS)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.52, 0.55, 0.6, 0.65])
    parser.add_argument("--coverage", type=float, default=0.5)
    args = parser.parse_args()
    embed = MiniLMEmbeddingFunction()
    conversations = [json.loads(line) for line in args.conversations.read_text(encoding="utf-8").splitlines() if line]
    texts = {doc["doc_id"]: doc["text"] for conversation in conversations for doc in conversation["documents"]}
    ids = sorted(texts)
    chunks = {doc: chunk_document(Document(id=doc, text=texts[doc])) for doc in ids}
    passages = [passage.text for doc in ids for passage in chunks[doc]]
    vectors, sentence_rows = embed.embed_passages(passages)
    rows = dict(zip(passages, sentence_rows, strict=True))
    stored, start = {}, 0
    for doc in ids:
        stored[doc] = vectors[start : start + len(chunks[doc])]
        start += len(chunks[doc])
    rng = random.Random(0)
    scores: dict[str, list[tuple[float, float]]] = {"own": [], "another": []}
    for conversation in conversations:
        own = conversation["documents"][0]["doc_id"]
        for turn in conversation["turns"]:
            question = (turn["text"] or "").strip()
            if turn["role"] != "user" or not question:
                continue
            asked = np.asarray(embed([question]))
            for kind, doc in (("own", own), ("another", rng.choice([d for d in ids if d != own]))):
                top = [passage.text for passage in rank(chunks[doc], stored[doc], asked, TOP, TOP * CANDIDATES_PER_K)]
                words = set(content_words(question))
                coverage = len(words & set(content_words("\n".join(top)))) / len(words) if words else 0.0
                support = [rows[text] for text in top if len(rows[text])]
                best = float((np.concatenate(support) @ asked[0]).max()) if support else 0.0
                scores[kind].append((coverage, best))
    print(f"{len(scores['own'])} user questions; coverage >= {args.coverage}")
    print("threshold  answerable by own document  by another document")
    for threshold in args.thresholds:
        shares = [np.mean([c >= args.coverage and s >= threshold for c, s in scores[kind]]) for kind in scores]
        print(f"{threshold:9.2f}  {shares[0]:26.2f}  {shares[1]:19.2f}")


if __name__ == "__main__":
    main()
