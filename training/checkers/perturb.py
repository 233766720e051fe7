"""Minimal-edit unfaithful twins of faithful replies, for training the faithfulness checker.

The human-labelled sets' unfaithful replies are mostly one wrong detail in an otherwise grounded sentence: a
swapped name ("bon iver" for "bon jovi"), a flipped polarity ("they were against slavery" where the evidence says
they split over defending it), a wrong year. The trained checker accepted many of these (specificity 0.42 on Q²
dev). Each faithful training reply here gets at most one twin with one such edit, kept with its original, so the
pair differs only in the edited detail (as FactCC builds its negatives, Kryscinski et al. 2020). The edits use
only the record itself (its knowledge and reply) and words of other training records' knowledge: no model.

Kinds of edit, tried in a seeded random order until one applies:
- `number`: a number of the reply replaced by another number of the evidence, or moved (years by 3 to 40);
- `swap`: a content word or name the reply shares with the evidence replaced by another one of the evidence
  that the reply does not use (or, for names, a name from another record's evidence);
- `negation`: the first auxiliary verb negated ("was" -> "was not"), an existing negation removed, or a word
  replaced by its antonym ("before" -> "after");
- `addition`: a sentence of another record's evidence appended (a claim with no support at all).
"""

from __future__ import annotations

import random
import re
from typing import Any

STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its this that
    these those there their they them he she his her him you your we our i me my not no yes do does did have has
    had can could will would should may might must so than then also just very more most some any all about into
    over after before such what which who whom whose when where why how one two well like really know think yeah
    oh ok okay lot many much""".split()
)
ANTONYMS = {
    "before": "after",
    "first": "last",
    "largest": "smallest",
    "biggest": "smallest",
    "highest": "lowest",
    "more": "fewer",
    "most": "least",
    "north": "south",
    "east": "west",
    "early": "late",
    "earliest": "latest",
    "older": "younger",
    "oldest": "youngest",
    "increase": "decrease",
    "increased": "decreased",
    "major": "minor",
    "male": "female",
    "men": "women",
    "won": "lost",
    "win": "lose",
    "inside": "outside",
    "above": "below",
    "modern": "ancient",
    "popular": "unpopular",
    "common": "rare",
    "legal": "illegal",
    "public": "private",
    "same": "different",
    "longer": "shorter",
    "higher": "lower",
    "best": "worst",
    "better": "worse",
    "favor": "against",
    "support": "oppose",
    "supported": "opposed",
    "born": "died",
    "southern": "northern",
    "western": "eastern",
    "top": "bottom",
    "start": "end",
    "started": "ended",
    "open": "closed",
    "true": "false",
}
ANTONYMS |= {b: a for a, b in list(ANTONYMS.items())}
AUXILIARY = re.compile(r"\b(is|was|are|were|can|could|will|would|does|did|should)\b(?! not\b|n't)", re.I)
NEGATION = re.compile(r"\b(is|was|are|were|can|could|will|would|has|have|had|does|did|should)(?: not|n't)\b", re.I)
NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")
WORD = re.compile(r"\b[a-z][a-z'-]{3,}\b")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _number(reply: str, knowledge: str, rng: random.Random, _: list[str]) -> str | None:
    numbers = NUMBER.findall(reply)
    if not numbers:
        return None
    target = rng.choice(numbers)
    others = [n for n in dict.fromkeys(NUMBER.findall(knowledge)) if n != target]
    if others:
        new = rng.choice(others)
    else:
        value = int(target.replace(",", "").split(".")[0])
        if 1000 <= value <= 2100:
            new = str(value + rng.choice([-1, 1]) * rng.randint(3, 40))
        else:
            new = str(max(0, value + rng.choice([-1, 1]) * max(1, round(value * rng.uniform(0.2, 0.9)))))
    return re.sub(rf"\b{re.escape(target)}\b", new, reply, count=1)


def _swap(reply: str, knowledge: str, rng: random.Random, names: list[str]) -> str | None:
    reply_names = [n for n in NAME.findall(reply) if n.lower() not in STOPWORDS and n in knowledge]
    if reply_names and rng.random() < 0.6:
        target = rng.choice(reply_names)
        pool = [n for n in NAME.findall(knowledge) if n.lower() not in reply.lower() and n.lower() not in STOPWORDS]
        pool = pool or [n for n in rng.sample(names, min(20, len(names))) if n not in reply and n not in knowledge]
        if pool:
            return reply.replace(target, rng.choice(pool), 1)
    reply_words = {w for w in WORD.findall(reply) if w not in STOPWORDS}
    evidence_words = [w for w in dict.fromkeys(WORD.findall(knowledge.lower())) if w not in STOPWORDS]
    shared = [w for w in evidence_words if w in reply_words]
    unused = [w for w in evidence_words if w not in reply_words and w not in reply.lower()]
    rng.shuffle(shared)
    for target in shared:
        alike = [w for w in unused if _ending(w) == _ending(target)]  # a rough stand-in for the part of speech
        if alike:
            return re.sub(rf"\b{re.escape(target)}\b", rng.choice(alike), reply, count=1)
    return None


def _ending(word: str) -> str:
    return next((end for end in ("ing", "ed", "ly", "ion", "al", "s") if word.endswith(end)), "")


def _negation(reply: str, knowledge: str, rng: random.Random, _: list[str]) -> str | None:
    words = [w for w in re.findall(r"\b\w+\b", reply) if w.lower() in ANTONYMS]
    choices = (
        ["antonym"] * bool(words) + ["remove"] * bool(NEGATION.search(reply)) + ["add"] * bool(AUXILIARY.search(reply))
    )
    if not choices:
        return None
    kind = rng.choice(choices)
    if kind == "add":
        # negate a statement about the evidence, not the speaker's opinion around it ("I think it would be ...")
        grounded = set(WORD.findall(knowledge.lower())) - STOPWORDS
        spots = [
            m for m in AUXILIARY.finditer(reply) if grounded & set(WORD.findall(reply[m.end() : m.end() + 40].lower()))
        ]
        if not spots:
            return None
        spot = rng.choice(spots)
        return reply[: spot.end()] + " not" + reply[spot.end() :]
    if kind == "antonym":
        target = rng.choice(words)
        new = ANTONYMS[target.lower()]
        return re.sub(rf"\b{re.escape(target)}\b", new.capitalize() if target[0].isupper() else new, reply, count=1)
    return NEGATION.sub(lambda m: m.group(1), reply, count=1)


def _addition(reply: str, knowledge: str, rng: random.Random, sentences: list[str]) -> str | None:
    other = rng.choice(sentences)
    if other in knowledge:
        return None
    reply = reply.rstrip()
    return reply + ("" if reply[-1:] in ".!?" else ".") + " " + other


def _grounded(reply: str, knowledge: str) -> bool:
    """The reply states something of the evidence (three content words in common), not only chit-chat."""
    evidence = set(WORD.findall(knowledge.lower())) - STOPWORDS
    return len(evidence & set(WORD.findall(reply.lower()))) >= 3


EDITS = {"number": _number, "swap": _swap, "negation": _negation, "addition": _addition}
ADDITION_FIRST = 0.15
"""Share of replies for which an appended unsupported sentence is tried before the other edits (in random order)."""


def perturbed_twins(records: list[dict[str, Any]], seed: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` pairs (the faithful original and its edited unfaithful twin) as records of source `perturbed`.

    `records` are training records only (their groups are already on the training side); each twin keeps its
    original's knowledge and history, so it stays in the same group.
    """
    rng = random.Random(seed)
    faithful = [r for r in records if r["label"] == "faithful" and _grounded(r["response"], r["knowledge"])]
    rng.shuffle(faithful)
    names = sorted({n for r in records for n in NAME.findall(r["knowledge"]) if len(n) > 3})
    sentences = [s for r in records for s in SENTENCE_END.split(r["knowledge"]) if 6 <= len(s.split()) <= 30]
    out: list[dict[str, Any]] = []
    for record in faithful:
        if len(out) >= 2 * limit:
            break
        kinds = [kind for kind in EDITS if kind != "addition"]
        rng.shuffle(kinds)
        if rng.random() < ADDITION_FIRST:
            kinds.insert(0, "addition")
        for kind in kinds:
            pool = sentences if kind == "addition" else names
            edited = EDITS[kind](record["response"], record["knowledge"], rng, pool)
            if edited and edited.strip().lower() != record["response"].strip().lower():
                base = {**record, "source": "perturbed", "meta": {**record["meta"], "edit": kind}}
                out.append({**base, "id": record["id"] + ":original"})
                out.append({**base, "id": record["id"] + ":" + kind, "response": edited, "label": "unfaithful"})
                break
    return out
