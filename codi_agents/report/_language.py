"""Language and diversity of a stream of dialogues, synthetic or human, measured the same way.

Word counts, question types and dependence cues are exact; distinct-n and near-duplicates are
measured on seeded samples (exact below the sample size), and on samples of the same size when
two sets are compared, because both measures fall as a set grows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from codi_agents.report._metrics import (
    QUESTION_TYPES,
    Reservoir,
    depends_on_context,
    distinct_n,
    normalised,
    question_type,
    sample,
    tokens,
)
from codi_agents.report._schema import Distribution, LanguageStats

TEXT_SAMPLE = 20_000
"""Turns kept per role for distinct-n."""
CONVERSATION_SAMPLE = 5_000
"""Conversations kept for near-duplicate detection."""
NEAR_DUPLICATE_JACCARD = 0.8
SHINGLE_WORDS = 3
MINHASH_PERMUTATIONS = 64


@dataclass
class Dialogue:
    """The text of one conversation, in order; the form both synthetic and reference sets are measured in."""

    user: list[str]
    assistant: list[str]
    depends_by_checks: list[bool] | None = None
    """Per user turn: planned as context-dependent and found realised by the critic (synthetic only)."""
    flagged_near_duplicate: bool = False


class LanguageAccumulator:
    """Feeds on dialogues one at a time; `result()` gives the `LanguageStats`."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.name = name
        self.seed = seed
        self.conversations = 0
        self.turns: Counter[int] = Counter()
        self.user_words: Counter[int] = Counter()
        self.assistant_words: Counter[int] = Counter()
        self.question_types: Counter[str] = Counter()
        self.later_user_turns = 0
        self.dependent = 0
        self.checked_later_turns = 0
        self.dependent_by_checks = 0
        self.repeated = 0
        self.flagged = 0
        self.user_texts: Reservoir[str] = Reservoir(TEXT_SAMPLE, seed)
        self.assistant_texts: Reservoir[str] = Reservoir(TEXT_SAMPLE, seed + 1)
        self.user_sides: Reservoir[str] = Reservoir(CONVERSATION_SAMPLE, seed + 2)

    def add(self, dialogue: Dialogue) -> None:
        self.conversations += 1
        self.turns[len(dialogue.user)] += 1
        self.flagged += dialogue.flagged_near_duplicate
        seen: set[str] = set()
        for position, text in enumerate(dialogue.user):
            self.user_words[len(tokens(text))] += 1
            self.question_types[question_type(text)] += 1
            self.user_texts.add(text)
            key = normalised(text)
            self.repeated += key in seen
            seen.add(key)
            if position == 0:
                continue
            self.later_user_turns += 1
            self.dependent += depends_on_context(text)
            if dialogue.depends_by_checks is not None:
                self.checked_later_turns += 1
                self.dependent_by_checks += dialogue.depends_by_checks[position]
        for text in dialogue.assistant:
            self.assistant_words[len(tokens(text))] += 1
            self.assistant_texts.add(text)
        self.user_sides.add("\n".join(dialogue.user))

    def result(self, turn_sample: int | None = None, conversation_sample: int | None = None) -> LanguageStats:
        """The measures; distinct-n on `turn_sample` user (and assistant) turns, near-duplicates on
        `conversation_sample` conversations, when given (to compare sets of different sizes)."""
        users = sample(self.user_texts.items, turn_sample or len(self.user_texts.items), self.seed)
        assistants = sample(self.assistant_texts.items, turn_sample or len(self.assistant_texts.items), self.seed)
        sides = sample(self.user_sides.items, conversation_sample or len(self.user_sides.items), self.seed)
        user_turns = sum(self.user_words.values())
        return LanguageStats(
            name=self.name,
            conversations=self.conversations,
            user_turns=user_turns,
            assistant_turns=sum(self.assistant_words.values()),
            user_turns_per_conversation=dict(sorted(self.turns.items())),
            user_words=dict(sorted(self.user_words.items())),
            assistant_words=dict(sorted(self.assistant_words.items())),
            user_words_summary=Distribution.of_counts(dict(self.user_words)),
            assistant_words_summary=Distribution.of_counts(dict(self.assistant_words)),
            turns_summary=Distribution.of_counts(dict(self.turns)),
            question_types={kind: self.question_types[kind] for kind in QUESTION_TYPES if self.question_types[kind]},
            distinct={
                "user-1": distinct_n(users, 1),
                "user-2": distinct_n(users, 2),
                "assistant-1": distinct_n(assistants, 1),
                "assistant-2": distinct_n(assistants, 2),
            },
            distinct_sample_turns=len(users),
            later_user_turns=self.later_user_turns,
            dependent_share=_share(self.dependent, self.later_user_turns),
            dependent_by_checks_share=_share(self.dependent_by_checks, self.checked_later_turns),
            repeated_question_share=_share(self.repeated, user_turns),
            near_duplicate_share=near_duplicate_share(sides, self.seed),
            near_duplicate_sample=len(sides),
            flagged_near_duplicate_share=_share(self.flagged, self.conversations),
        )


def compare(synthetic: LanguageAccumulator, reference: LanguageAccumulator) -> tuple[LanguageStats, LanguageStats]:
    """Both sets' measures, with distinct-n and near-duplicates on samples of the same size."""
    turns = min(len(synthetic.user_texts.items), len(reference.user_texts.items))
    conversations = min(len(synthetic.user_sides.items), len(reference.user_sides.items))
    return synthetic.result(turns, conversations), reference.result(turns, conversations)


def near_duplicate_share(texts: Sequence[str], seed: int = 0) -> float | None:
    """Share of texts with at least one other text whose word-3-gram Jaccard similarity, estimated with
    MinHash (datasketch), reaches `NEAR_DUPLICATE_JACCARD`."""
    if len(texts) < 2:
        return None
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=NEAR_DUPLICATE_JACCARD, num_perm=MINHASH_PERMUTATIONS)
    hashes = []
    for index, text in enumerate(texts):
        words = tokens(text)
        shingles = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}
        minhash = MinHash(num_perm=MINHASH_PERMUTATIONS, seed=seed)
        minhash.update_batch([shingle.encode("utf-8") for shingle in shingles])
        lsh.insert(str(index), minhash)
        hashes.append(minhash)
    duplicated = sum(
        1
        for index, minhash in enumerate(hashes)
        if any(
            key != str(index) and minhash.jaccard(hashes[int(key)]) >= NEAR_DUPLICATE_JACCARD
            for key in lsh.query(minhash)
        )
    )
    return duplicated / len(texts)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
