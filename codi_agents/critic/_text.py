"""Light text analysis for the critic's cheap signals: content words, sentences, numbers and names.

Deliberately simple and language-model free: every function is a few regular expressions, so a
signal costs microseconds and behaves the same on every machine.
"""

from __future__ import annotations

import re
from functools import lru_cache

from codi_agents._sentences import CACHED_TEXTS, sentences

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+|\b[A-Z]{2,}\b")

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further had hadn't has hasn't have haven't having he he'd he'll
    he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't
    it it's its itself just let's me more most mustn't my myself no nor not now of off on once only or
    other ought our ours ourselves out over own same shan't she she'd she'll she's should shouldn't so
    some such than that that's the their theirs them themselves then there there's these they they'd
    they'll they're they've this those through to too under until up very was wasn't we we'd we'll we're
    we've were weren't what what's when when's where where's which while who who's whom why why's will
    with won't would wouldn't yes you you'd you'll you're you've your yours yourself yourselves yeah yea
    well oh okay ok sure really actually like get got one ones thing things much many may might must
    shall also still even though although however either neither would could please thanks thank know
    think
    """.split()
)

NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero _ two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
    if word != "_"
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90"}
"""Number words read as digits, so that "ten days" in a passage supports "10 days" in a reply ("one" is left
out: it is far more often a pronoun)."""

_SUFFIXES = ("ations", "ation", "ingly", "ings", "ing", "edly", "ies", "ied", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match plurals and tenses (move, moves, moving) across reply and passage."""
    if word[0].isdigit():
        return word.replace(",", "")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words that carry content (no stopwords, no one-letter words)."""
    return list(_content_words(text))


@lru_cache(maxsize=CACHED_TEXTS)
def _content_words(text: str) -> tuple[str, ...]:
    """`content_words`, remembered: a passage's sentences are read again at every turn that shows them."""
    words = []
    for token in _WORD.findall(text):
        word = token.lower().strip("'-.,")
        if len(word) < 2 and not word.isdigit():
            continue
        if word in STOPWORDS:
            continue
        words.append(NUMBER_WORDS.get(word) or stem(word))
    return tuple(words)


def numbers(text: str) -> set[str]:
    """Numbers in a text (digits, or number words from two to ninety), without separators or trailing dots."""
    found = {match.replace(",", "").rstrip(".") for match in _NUMBER.findall(text)}
    found.update(NUMBER_WORDS[word] for word in re.findall(r"[a-z]+", text.lower()) if word in NUMBER_WORDS)
    return found


def names(text: str) -> set[str]:
    """Capitalised words not at the start of a sentence (a rough proxy for names), lower-cased."""
    found = set()
    for sentence in sentences(text):
        for match in _CAPITALISED.finditer(sentence):
            if match.start() > 0 and match.group().lower() not in STOPWORDS:
                found.add(match.group().lower())
    return found


def words_of(text: str) -> set[str]:
    """Every lower-cased letter run of a text: what a name must be found among to count as supported."""
    return set(re.findall(r"[a-z]+", text.lower()))


# Per passage text, remembered: the same passages are shown at many turns, and these sets are the same each time.

PAIR_WINDOW = 3
"""Two content words count as a supported pair when a passage has them at most this many content words apart."""


@lru_cache(maxsize=CACHED_TEXTS)
def near_pairs(text: str) -> frozenset[frozenset[str]]:
    """The content-word pairs said together (within `PAIR_WINDOW` words of one sentence) in `text`."""
    near: set[frozenset[str]] = set()
    for sentence in sentences(text) or [text]:
        words = content_words(sentence)
        for i, word in enumerate(words):
            for other in words[i + 1 : i + 1 + PAIR_WINDOW]:
                near.add(frozenset((word, other)))
    return frozenset(near)


@lru_cache(maxsize=CACHED_TEXTS)
def word_set(text: str) -> frozenset[str]:
    """`content_words` of a text, as a set."""
    return frozenset(content_words(text))


@lru_cache(maxsize=CACHED_TEXTS)
def number_set(text: str) -> frozenset[str]:
    """`numbers` of a text."""
    return frozenset(numbers(text))


@lru_cache(maxsize=CACHED_TEXTS)
def letter_runs(text: str) -> frozenset[str]:
    """`words_of` a text."""
    return frozenset(words_of(text))


REPEAT_SIMILARITY = 0.8
"""Two messages are the same when their sets of word trigrams overlap this much (Jaccard): nearly word for word."""


def repeats(text: str, earlier: list[str]) -> bool:
    """Whether `text` says again, nearly word for word, one of the `earlier` messages.

    Compared on lower-cased words, by the Jaccard similarity of their word trigrams (whole, when `text` has fewer
    than three words). Symmetric, so "What does it say about fees?" does not repeat "What does it say about
    deadlines?" (3 of 5 trigrams shared), and saying the same thing in other words is not a repeat either.
    """
    words = _lower_words(text)
    if len(words) < 3:
        return bool(words) and any(_lower_words(other) == words for other in earlier)
    own = _trigrams(words)
    for other in earlier:
        theirs = _trigrams(_lower_words(other))
        if len(own & theirs) >= REPEAT_SIMILARITY * len(own | theirs):
            return True
    return False


def _lower_words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _trigrams(words: list[str]) -> set[tuple[str, str, str]]:
    return set(zip(words, words[1:], words[2:], strict=False))
