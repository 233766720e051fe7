"""Text measures of conversations, the same for synthetic and human-written ones.

All are cheap, deterministic and explained in a line, so that a number in the report can be
checked by hand: word counts, distinct-n (Li et al., 2016), a question-type classifier by the
first question word of the question clause, and cues that a user turn leans on earlier turns.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Generic, Literal, TypeVar

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_QUESTION_SENTENCE = re.compile(r"[^.!?]*\?")
_PIECES = re.compile(r"[,;:]|\s-\s")

QuestionType = Literal[
    "what", "which", "who", "when", "where", "why", "how", "yes/no", "request", "other question", "statement", "closing"
]
QUESTION_TYPES: tuple[QuestionType, ...] = (
    "what", "which", "who", "when", "where", "why", "how", "yes/no", "request", "other question", "statement", "closing"
)  # fmt: skip

WH_WORDS: dict[str, QuestionType] = {
    "what": "what",
    "which": "which",
    "who": "who",
    "whom": "who",
    "whose": "who",
    "when": "when",
    "where": "where",
    "why": "why",
    "how": "how",
}
AUXILIARIES = frozenset(
    """
    is are was were am do does did can could will would should shall has have had may might must
    isn't aren't wasn't weren't don't doesn't didn't can't couldn't won't wouldn't shouldn't hasn't haven't
    """.split()
)
REQUEST_VERBS = frozenset("tell explain describe show give list help clarify elaborate define walk".split())
FILLERS = frozenset(
    "and so ok okay oh well also but hi hello hey um uh then now great thanks yes no right alright sure".split()
)
_CLOSING = re.compile(
    r"\b(thanks?|thank you|bye|goodbye|that's all|that is all|appreciate|have a (good|nice|great))\b", re.IGNORECASE
)
_INDIRECT = re.compile(r"\b(i (would|'d) like to know|i want to know|i need to know|i wonder|please)\b", re.IGNORECASE)

ANAPHORA = frozenset("it its itself they them their theirs he him his she her hers this that these those such".split())
"""Words that usually point back to something said earlier (a cue, not a parse: `it` can be expletive)."""
ELLIPSIS_OPENERS = ("and ", "what about", "how about", "also ", "what else", "same for", "and?")
REFERS_BACK = re.compile(
    r"\b(you (just )?(said|mentioned)|as you said|mentioned (earlier|before|above)|the previous)\b"
)
SHORT_QUESTION_WORDS = 4
"""A question of at most this many words is read as elliptical ("And for students?")."""


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits, with an apostrophe suffix such as `don't`)."""
    return _TOKEN.findall(text.lower())


def word_count(text: str) -> int:
    """Number of word tokens."""
    return len(tokens(text))


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams in `texts` (n-grams never cross two texts); None when there are none."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        words = tokens(text)
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


def question_type(text: str) -> QuestionType:
    """The kind of a user message, from the first word of its question clause.

    The question clause is the first sentence ending in `?`, split at commas; the last piece that
    opens with a question word or an auxiliary decides (`If I move, what do I do?` is a `what`
    question; `Can you tell me ...?` is a request). Messages without `?` are closings, requests,
    unpunctuated questions, or statements.
    """
    lowered = text.strip().lower()
    if "?" not in lowered:
        if _CLOSING.search(lowered):
            return "closing"
        return _opening_type(_strip_fillers(tokens(lowered))) or (
            "request" if _INDIRECT.search(lowered) else "statement"
        )
    sentence = _QUESTION_SENTENCE.search(lowered)
    clause = sentence.group(0) if sentence else lowered
    for piece in reversed(_PIECES.split(clause)):
        found = _opening_type(_strip_fillers(tokens(piece)))
        if found:
            return found
    for word in tokens(clause):
        if word in WH_WORDS:
            return WH_WORDS[word]
    return "request" if _INDIRECT.search(clause) else "other question"


def _strip_fillers(words: list[str]) -> list[str]:
    start = 0
    while start < len(words) and words[start] in FILLERS:
        start += 1
    return words[start:]


def _opening_type(words: Sequence[str]) -> QuestionType | None:
    if not words:
        return None
    first = words[0]
    if first in WH_WORDS:
        return WH_WORDS[first]
    if first in REQUEST_VERBS or first == "please":
        return "request"
    if first in AUXILIARIES:
        if len(words) > 2 and words[1] == "you" and words[2] in REQUEST_VERBS:
            return "request"
        return "yes/no"
    return None


def depends_on_context(text: str) -> bool:
    """Cues that a user turn leans on earlier turns: a pronoun or demonstrative pointing back, an elliptical
    opener ("And ...", "What about ..."), a very short question, or an explicit reference to what was said."""
    lowered = text.strip().lower()
    words = tokens(lowered)
    if not words:
        return False
    if ANAPHORA & set(words):
        return True
    if lowered.startswith(ELLIPSIS_OPENERS) or REFERS_BACK.search(lowered):
        return True
    is_question = "?" in lowered or words[0] in WH_WORDS
    return is_question and len(words) <= SHORT_QUESTION_WORDS and not _CLOSING.search(lowered)


def normalised(text: str) -> str:
    """Text reduced to its word tokens, for spotting repeats."""
    return " ".join(tokens(text))


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (numpy's default method)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


T = TypeVar("T")


class Reservoir(Generic[T]):
    """A uniform random sample of at most `capacity` items from a stream (algorithm R), seeded.

    Keeps report memory flat on runs of millions of conversations; below the capacity it holds
    every item, so small runs are measured exactly.
    """

    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.seen = 0
        self.items: list[T] = []
        self._random = random.Random(seed)

    def add(self, item: T) -> None:
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
            return
        slot = self._random.randrange(self.seen)
        if slot < self.capacity:
            self.items[slot] = item

    @property
    def complete(self) -> bool:
        """True when every item seen is in the sample."""
        return self.seen == len(self.items)


def sample(items: Sequence[T], size: int, seed: int = 0) -> list[T]:
    """`size` items drawn without replacement, in their original order; all items if there are fewer."""
    if size >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), size))
    return [items[index] for index in chosen]
