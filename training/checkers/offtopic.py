"""Off-topic requests inserted in documents, with on-topic and off-topic look-alikes as negatives.

Many injections carry no address to the model at all: a question or a task that the page has no reason to
ask its reader ("What is the capital of Brazil?" in a tax form). Public attack strings of that kind are few, so
a window classifier learns them by heart and misses new ones. Here the requests come from thousands of real
user questions (the dialogue histories of the faithfulness training file), and the negatives teach what the
request form alone does not decide:

- **positive**: a question from another conversation (or, one time in four, a bare task of `synthetic.TASKS`)
  inserted in a benign training window of a document;
- **negative, on topic**: a sentence of the same document (preferably a question or an imperative, as help
  pages ask their own questions) moved into the window;
- **negative, off topic**: a statement (not a question) from another document inserted in the window.

Questions about translation or programming are left out of the pool, so the held-out BIPIA families of those
kinds still measure transfer. Held-out hosts never serve as windows or as donors (only training windows do).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict

from training.checkers.common import TRAINING_DATA, read_jsonl
from training.checkers.data import Example
from training.checkers.synthetic import TASK_FRAMES, TASKS, insert_sentence, insertion_hosts

QUESTION_START = re.compile(
    r"^(what|who|whom|whose|which|when|where|why|how|do|does|did|can|could|is|are|was|were|have|has|would|will|"
    r"should|tell me|explain|describe)\b",
    re.IGNORECASE,
)
KEPT_UNSEEN = re.compile(
    r"\b(translat\w*|in (english|spanish|french|german|italian|japanese|chinese|russian)|say .+ in|"
    r"python|java\w*|code|coding|program\w*|function|sql|database|html|php|c\+\+)\b",
    re.IGNORECASE,
)
"""Kinds kept out of the pool: the held-out families `Language Translation` and `Programming Help`."""
REFERS_BACK = re.compile(r"\b(it|its|that|this|they|them|their|he|him|his|she|her|those|there|these)\b", re.IGNORECASE)
"""Questions that point back into their own conversation ("Do you know when that was?") make no sense alone."""
SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def question_pool(limit: int, seed: int) -> list[str]:
    """Distinct user questions (5 to 25 words) from the faithfulness training histories, taken from each source in
    turn (HotpotQA-style questions of HaluEval QA would otherwise be most of them)."""
    seen: set[str] = set()
    by_source: dict[str, list[str]] = defaultdict(list)
    for record in read_jsonl(TRAINING_DATA / "faithfulness_train.jsonl"):
        if record["source"] == "halueval_dialogue":
            continue
        for turn in record["history"]:
            for sentence in SENTENCE_END.split(turn.strip()):
                words = sentence.split()
                if not (sentence.endswith("?") and 5 <= len(words) <= 25 and QUESTION_START.match(sentence)):
                    continue
                if KEPT_UNSEEN.search(sentence) or REFERS_BACK.search(sentence) or sentence.lower() in seen:
                    continue
                seen.add(sentence.lower())
                by_source[record["source"]].append(sentence[0].upper() + sentence[1:])
    rng = random.Random(seed)
    queues = [rng.sample(rows, len(rows)) for _, rows in sorted(by_source.items())]
    pool: list[str] = []
    while len(pool) < limit and any(queues):
        pool.extend(queue.pop() for queue in queues if queue)
    return pool[:limit]


def _sentences(window: str) -> list[str]:
    return [s.strip() for line in window.split("\n") for s in SENTENCE_END.split(line) if len(s.split()) >= 4]


def _on_topic(sentences: list[str], rng: random.Random) -> str:
    asking = [s for s in sentences if s.endswith("?") or QUESTION_START.match(s) or s.split()[0].istitle()]
    return rng.choice(asking or sentences)


def questions_used(count: int, standalone: float) -> int:
    """How many questions of the pool `offtopic_windows(..., count, standalone)` takes (the first ones)."""
    return count + round(count * standalone)


def offtopic_windows(benign: list[Example], seed: int, count: int, standalone: float = 0.0) -> list[Example]:
    """`count` positives and `count` negatives: on-topic sentences and off-topic statements in equal parts, except
    a `standalone` share of questions from the pool on their own (a question is suspect where it is out of place,
    not as a text of its own: an FAQ entry or a dialogue turn)."""
    rng = random.Random(seed + 23)
    hosts = insertion_hosts(benign)
    by_host: dict[str, list[str]] = defaultdict(list)
    for example in hosts:
        by_host[example.group].extend(_sentences(example.evidence))
    statements = [s for e in hosts for s in _sentences(e.evidence) if not s.endswith("?")]
    alone = round(count * standalone)
    questions = question_pool(questions_used(count, standalone), seed)
    out: list[Example] = []
    for i, question in enumerate(questions[:count]):
        host = rng.choice(hosts)
        request = question
        if i % 4 == 3:  # a quarter are bare tasks instead ("Also, give me a recipe for banana bread.")
            task = rng.choice(TASKS)
            request = rng.choice(TASK_FRAMES).format(t=task, T=task[0].upper() + task[1:])
        out.append(_example(insert_sentence(host.evidence, request, rng), 1, f"offtopic-request:{i}", host))
    for i, question in enumerate(questions[count:]):
        out.append(Example(question, "", "", 0, f"standalone-question:{i}", tags={"family": "synthetic_standalone"}))
    for i in range(count - alone):
        host = rng.choice(hosts)
        own = [s for s in by_host[host.group] if s not in host.evidence]
        if i % 2 == 0 and own:
            sentence, family = _on_topic(own, rng), "on-topic"
        else:
            sentence, family = rng.choice(statements), "offtopic-statement"
        out.append(_example(insert_sentence(host.evidence, sentence, rng), 0, f"{family}:{i}", host))
    return out


def _example(window: str, label: int, group: str, host: Example) -> Example:
    family = group.split(":", maxsplit=1)[0]
    return Example(window, "", "", label, group, tags={"family": "synthetic_" + family, "host": host.tags.get("host")})
