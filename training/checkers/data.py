"""Training, dev and held-out examples for both checkers, built with the run-time text layout.

Faithfulness: records are grouped (HaluEval by `meta.pair`, the rest by knowledge snippet) and one group in
ten goes to the dev split, so twins and shared snippets never straddle train and dev. Whole sources can be held
out to measure transfer to data of another origin.

Injection: split by attack family (held-out families never reach training) and by host (`meta.host_id`):
one benign host in five, with every attacked copy of it, is held out. Each text is cut into the run-time
windows; a window is positive when it holds the injected instruction, found as the word 5-grams that recur
across different hosts' injected texts and never occur in benign text.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from training.checkers.common import TRAINING_DATA, bucket, load_text_module, read_jsonl

FAITH_SOURCES = (
    "begin_v1",
    "halueval_qa",
    "halueval_dialogue",
    "faithdial_audit_gold",
    "faithdial_audit_models",
    "q2_wow",
)
HUMAN_LABELLED = frozenset({"begin_v1", "faithdial_audit_gold", "faithdial_audit_models", "q2_wow"})


@dataclass
class Example:
    """One model input: (evidence, context, claim) for faithfulness, or (window, "", "") for injection."""

    evidence: str
    context: str
    claim: str
    label: int
    group: str
    weight: float = 1.0
    tags: dict[str, Any] = field(default_factory=dict)


def faith_group(record: dict[str, Any]) -> str:
    """The unit that must stay on one side of a split."""
    pair = record["meta"].get("pair")
    return str(pair) if pair else "k:" + record["knowledge"].strip().lower()


def faith_example(record: dict[str, Any], layout: Any) -> Example:
    """A record as the run time sees a reply sentence: the user's last turn, the reply, chosen evidence."""
    text = load_text_module()
    context = record["history"][-1] if record["history"] else ""
    claim = record["response"]
    budget = text.evidence_budget_words(layout, context, claim)
    evidence = text.select_evidence([record["knowledge"]], claim, budget)
    return Example(
        evidence,
        context,
        claim,
        int(record["label"] == "faithful"),
        faith_group(record),
        tags={"source": record["source"], "id": record["id"]},
    )


def faithfulness_splits(
    layout: Any,
    exclude: tuple[str, ...],
    held_out: tuple[str, ...],
    cap_pairs: dict[str, int],
    seed: int,
    perturb: int = 0,
    matched_qa_ratio: float = 0.0,
) -> dict[str, list[Example]]:
    """`train`, `dev` (one group in ten of the trained sources) and one split per held-out source.

    `cap_pairs` limits a source to that many groups (HaluEval QA has 9k pairs; a sample is enough and
    keeps the human-labelled sources from being drowned). Labels are balanced within each source by weight.
    `perturb` adds that many pairs of a human-labelled training reply and its minimally edited unfaithful twin
    (`perturb.py`), as the training-only source `perturbed`. `matched_qa_ratio` adds the HaluEval QA pairs of
    similar answer lengths (`length_matched_pairs`) as the training-only source `halueval_qa_matched`.
    """
    every_record = list(read_jsonl(TRAINING_DATA / "faithfulness_train.jsonl"))
    records = [r for r in every_record if r["source"] not in exclude]
    splits: dict[str, list[Example]] = defaultdict(list)
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["source"] in held_out:
            splits["heldout:" + record["source"]].append(faith_example(record, layout))
        else:
            by_source[record["source"]].append(record)
    rng = random.Random(seed)
    trained_human: list[dict[str, Any]] = []
    for source, rows in sorted(by_source.items()):
        groups = sorted({faith_group(r) for r in rows})
        dev = {g for g in groups if bucket(g, 10) == 0}
        train_groups = [g for g in groups if g not in dev]
        if source in cap_pairs:
            rng.shuffle(train_groups)
            train_groups = train_groups[: cap_pairs[source]]
        keep = set(train_groups)
        train = [faith_example(r, layout) for r in rows if faith_group(r) in keep]
        counts = Counter(e.label for e in train)
        for example in train:
            example.weight = len(train) / (2 * counts[example.label])
        splits["train"].extend(train)
        splits["dev"].extend(faith_example(r, layout) for r in rows if faith_group(r) in dev)
        if source in HUMAN_LABELLED:
            trained_human.extend(r for r in rows if faith_group(r) in keep)
    if perturb:
        from training.checkers.perturb import perturbed_twins

        splits["train"].extend(faith_example(r, layout) for r in perturbed_twins(trained_human, seed, perturb))
    if matched_qa_ratio:
        splits["train"].extend(faith_example(r, layout) for r in length_matched_pairs(every_record, matched_qa_ratio))
    return dict(splits)


def length_matched_pairs(records: list[dict[str, Any]], ratio: float) -> list[dict[str, Any]]:
    """HaluEval QA pairs of `records` whose hallucinated answer has between 1/`ratio` and `ratio` times the right
    answer's words.

    Most right answers are short spans and most hallucinations long sentences, so a model trained on all of them
    learns length; the pairs left are mostly one name or number swapped for another. Pairs whose group is in the
    dev tenth are left out, as for every trained source. Their source is renamed `halueval_qa_matched`, a
    training-only source.
    """
    pairs: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in records:
        if record["source"] == "halueval_qa" and bucket(faith_group(record), 10) != 0:
            pairs[faith_group(record)][record["label"]] = record
    kept = []
    for pair in pairs.values():
        right, wrong = pair.get("faithful"), pair.get("unfaithful")
        if right is None or wrong is None:
            continue
        words = len(wrong["response"].split()) / max(1, len(right["response"].split()))
        if 1 / ratio <= words <= ratio:
            kept.extend({**r, "source": "halueval_qa_matched"} for r in (right, wrong))
    return kept


def _shingles(words: list[str], n: int = 5) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def attack_shingles(records: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    """Word 5-grams of injected text: in injected texts of three or more hosts, and in no benign text."""
    benign: set[tuple[str, ...]] = set()
    hosts: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for record in records:
        grams = _shingles(_words(record["text"]))
        if record["label"] == "benign":
            benign |= grams
        else:
            for gram in grams:
                hosts[gram].add(record["meta"].get("host_id") or record["id"])
    return {gram for gram, seen in hosts.items() if len(seen) >= 3 and gram not in benign}


def covered_words(text: str, attack: set[tuple[str, ...]]) -> int:
    """How many words of `text` lie inside an attack 5-gram."""
    words = _words(text)
    covered = [False] * len(words)
    for i in range(len(words) - 4):
        if tuple(words[i : i + 5]) in attack:
            covered[i : i + 5] = [True] * 5
    return sum(covered)


def injection_windows(
    records: list[dict[str, Any]], tokenizer: Any, max_tokens: int, attack: set[tuple[str, ...]]
) -> tuple[list[Example], int]:
    """Run-time windows of each record, labelled; also how many injected records had no attack found."""
    text = load_text_module()
    out: list[Example] = []
    missed = 0
    for record in records:
        tags = {"family": record["meta"]["family"], "id": record["id"], "host": record["meta"].get("host")}
        group = record["meta"].get("host_id") or record["id"]
        chunks = text.windows(record["text"], tokenizer, max_tokens)
        if record["label"] == "benign":
            out.extend(Example(w, "", "", 0, group, tags=tags) for w in chunks)
            continue
        cover = [covered_words(w, attack) for w in chunks]
        total = sum(cover)
        if total == 0:
            missed += 1
            continue
        for window, hits in zip(chunks, cover, strict=True):
            if hits >= min(12, total) or hits >= 0.5 * total:
                out.append(Example(window, "", "", 1, group, tags=tags))
            elif hits == 0:
                out.append(Example(window, "", "", 0, group, tags={**tags, "host_text_of_injected": True}))
    return out, missed


def injection_split(
    seed: int, all_families: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Records for training and for the held-out test, and what was held out.

    About a fifth of the attack families of each kind (BIPIA text, BIPIA code, AgentDojo) and one benign host
    in five (all families, cue-word text included) are held out, with every record built on a held-out host.
    """
    records = list(read_jsonl(TRAINING_DATA / "injection_train.jsonl"))
    rng = random.Random(seed)
    families: dict[str, list[str]] = defaultdict(list)
    for family in sorted({r["meta"]["family"] for r in records if r["label"] == "injection"}):
        families[family.split(":")[0]].append(family)
    held = set()
    for kind, names in sorted(families.items()):
        rng.shuffle(names)
        held.update(names[: max(2, round(len(names) * 0.2))] if kind != "bipia_code" else names[:2])
    hosts = sorted({r["meta"].get("host_id") or r["id"] for r in records if r["label"] == "benign"})
    held_hosts = {h for h in hosts if bucket(h, 5) == 0}
    train, test = [], []
    for record in records:
        host = record["meta"].get("host_id") or record["id"]
        if (record["meta"]["family"] in held and not all_families) or host in held_hosts:
            test.append(record)
        else:
            train.append(record)
    return train, test, {"families": sorted(held), "benign_hosts": len(held_hosts)}
