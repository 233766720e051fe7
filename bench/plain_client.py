"""The plainest client for codi's workload: asyncio + `openai.AsyncOpenAI`, no framework, no embeddings.

Run by `bench/default_path.py` as a subprocess against the fake server:

    python bench/plain_client.py CORPUS.jsonl --base-url URL --model NAME --n 64 --k 32

K conversations in flight; per turn a user question, a grounded answer (passages picked by word
overlap) and a structured critique (a function-calling request with a JSON schema, as codi's
critic sends). A conversation stops early when the critique rejects the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from pathlib import Path
from typing import Any

TURNS = 4
"""Exchanges per conversation (three requests each)."""

JUDGEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reasons": {"type": "string"},
        "grounded": {"type": "boolean"},
        "faithful": {"type": "boolean"},
        "answers_question": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["reasons", "grounded", "faithful", "answers_question", "score"],
}
_WORD = re.compile(r"[a-z]+")


def _chunks(text: str, size: int = 800) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


def _best_passages(chunks: list[str], question: str, k: int = 3) -> list[str]:
    words = set(_WORD.findall(question.lower()))
    return sorted(chunks, key=lambda chunk: -len(words & set(_WORD.findall(chunk.lower()))))[:k]


async def _baseline_conversation(client: Any, model: str, document: dict[str, Any], turns: int) -> None:
    chunks = _chunks(document["text"])
    history: list[dict[str, str]] = []
    for _ in range(turns):
        asked = await client.chat.completions.create(
            model=model,
            messages=[
                {
                    "role": "system",
                    "content": f"You are a curious user.\n<document>\n{document['text'][:3000]}\n</document>",
                },
                *history,
                {"role": "user", "content": "(Your next message: ask a question about the document.)"},
            ],
        )
        question = asked.choices[0].message.content or ""
        passages = "\n".join(
            f'<passage id="{document["id"]}-{i}">\n{text}\n</passage>'
            for i, text in enumerate(_best_passages(chunks, question))
        )
        answered = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": f"Answer only from these passages.\n{passages}"},
                *history,
                {"role": "user", "content": question},
            ],
        )
        answer = answered.choices[0].message.content or ""
        judged = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": f"Judge the answer against the passages.\n{passages}"},
                {"role": "user", "content": f"Question: {question}\nAnswer: {answer}"},
            ],
            tools=[{"type": "function", "function": {"name": "Judgement", "parameters": JUDGEMENT_SCHEMA}}],
            tool_choice={"type": "function", "function": {"name": "Judgement"}},
        )
        calls = judged.choices[0].message.tool_calls or []
        if not calls or not json.loads(calls[0].function.arguments).get("grounded", False):
            return
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


async def _baseline(corpus: Path, base_url: str, model: str, n: int, k: int, turns: int) -> None:
    from openai import AsyncOpenAI

    documents = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    client = AsyncOpenAI(base_url=base_url, api_key="fake", max_retries=2)
    todo = iter(range(n))

    async def worker() -> None:
        for number in todo:
            await _baseline_conversation(client, model, documents[number % len(documents)], turns)

    await asyncio.gather(*(worker() for _ in range(k)))
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="A .jsonl file of {id, title, text}.")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=int, required=True, help="Conversations in all.")
    parser.add_argument("--k", type=int, required=True, help="Conversations in flight.")
    parser.add_argument("--turns", type=int, default=TURNS)
    args = parser.parse_args()
    asyncio.run(_baseline(args.corpus, args.base_url, args.model, args.n, args.k, args.turns))


if __name__ == "__main__":
    main()
