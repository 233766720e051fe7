"""Cheap grounding signals: computed for every turn, with no chat model.

Lexical support (content words, numbers and names of the answer that occur in no passage are
strong evidence of invention), embedding similarity between each answer sentence and the passages'
sentences, abstention, personal claims an assistant cannot ground, and echoes of instructions
injected into passages. Each signal is a float so that calibration can weigh them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codi_agents.flows import Link
from codi_agents.passages import Passage
from codi_agents.security import injection_markers

Embed = Callable[[list[str]], Any]
"""Texts to vectors; a Chroma embedding function qualifies."""

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+|\b[A-Z]{2,}\b")
_LETTERS = re.compile(r"[a-z]+")
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
ABSTENTION = re.compile(
    r"\b(does(n't| not) (say|mention|specify|state|include|cover|tell|provide|give|contain|explain|list|address)"
    r"|(is|are)(n't| not) (mentioned|specified|stated|covered|included|given|listed|provided"
    r"|in the (document|passages?|text))"
    r"|no (information|details?|mention)|not (mentioned|specified|stated|covered)"
    r"|(can(not|'t)|could(n't| not)|unable to) "
    r"(find|answer|tell|say|determine)|i (don't|do not) (know|have (that|this|enough) information)"
    r"|(document|passages?|text|page|article) (is silent|says nothing|has no))",
    re.IGNORECASE,
)
PERSONAL_CLAIM = re.compile(
    r"\b(i (love|like|hate|enjoy|prefer|think|believe|guess|feel|remember|watched|saw"
    r"|have (seen|been|had|never|heard)|had|went|used to|grew up|play|played|own|live|am (a|not|so|really|glad|sure))"
    r"|i'm (a|not|so|really|glad|sure|guilty)"
    r"|i've|my (favou?rite|family|friend|mom|dad|wife|husband|kids?|son|daughter|house|dog|cat)|me too)\b",
    re.IGNORECASE,
)
PRONOUNS = frozenset(
    """
    it its they them their theirs he him his she her hers this that these those there
    """.split()
)
POLAR_STARTS = frozenset(
    """
    is are was were am do does did can could will would should shall has have had may might must isn't
    aren't doesn't don't didn't can't won't wouldn't shouldn't hasn't haven't
    """.split()
)
CLOSING_WORDS = re.compile(
    r"\b(thanks?|thank you|bye|goodbye|appreciate|that's all|that is all|helpful|perfect|great help)\b", re.I
)
ASSISTANT_SPEAK = re.compile(
    r"^\s*(sure|certainly|of course|according to (the|this)|based on the"
    r"|the (document|passage|text) (says|states|mentions))"
    r"|\bas an ai\b|\bhow can i (help|assist)\b|\bi'm here to help\b",
    re.IGNORECASE,
)


def content_words(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words that carry content (no stopwords, no one-letter words)."""
    words = []
    for token in _WORD.findall(text):
        word = token.lower().strip("'-.,")
        if len(word) < 2 or word in STOPWORDS:
            continue
        words.append(stem(word))
    return words


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match plurals and tenses across answer and passage."""
    if word[0].isdigit():
        return word.replace(",", "")
    for suffix in ("ations", "ation", "ingly", "ings", "ing", "edly", "ies", "ied", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def sentences(text: str) -> list[str]:
    """Sentences of a text, dropping empty pieces."""
    return [part.strip() for part in _SENTENCE_END.split(text) if len(part.strip()) > 2]


def numbers(text: str) -> set[str]:
    """Numbers in a text, without thousands separators or trailing dots."""
    return {match.replace(",", "").rstrip(".") for match in _NUMBER.findall(text)}


def names(text: str) -> set[str]:
    """Capitalised words not at the start of a sentence (a rough proxy for names)."""
    found = set()
    for sentence in sentences(text):
        for match in _CAPITALISED.finditer(sentence):
            if match.start() > 0 and match.group().lower() not in STOPWORDS:
                found.add(match.group().lower())
    return found


def grounding_signals(answer: str, passages: Sequence[Passage], question: str, embed: Embed | None) -> dict[str, float]:
    """Signals of how well `answer` is supported by `passages`; higher support means fewer invented facts."""
    evidence = "\n".join(passage.text for passage in passages)
    evidence_words = set(content_words(evidence))
    answer_words = content_words(answer)
    unsupported = [word for word in answer_words if word not in evidence_words]
    question_words = set(content_words(question))
    signals = {
        "answer_words": float(len(answer_words)),
        "unsupported_share": len(unsupported) / len(answer_words) if answer_words else 0.0,
        "unsupported_outside_question": (
            sum(1 for word in unsupported if word not in question_words) / len(answer_words) if answer_words else 0.0
        ),
        "novel_numbers": float(len(numbers(answer) - numbers(evidence))),
        "novel_names": float(len(names(answer) - set(_LETTERS.findall(evidence.lower())))),
        "abstains": 1.0 if ABSTENTION.search(answer) else 0.0,
        "personal_claims": float(len(PERSONAL_CLAIM.findall(answer))),
        "question_overlap": (len(question_words & set(answer_words)) / len(question_words) if question_words else 0.0),
        "injection_echo": injection_echo(answer, passages),
    }
    signals.update(similarity_signals(answer, evidence, question, embed))
    return signals


def similarity_signals(answer: str, evidence: str, question: str, embed: Embed | None) -> dict[str, float]:
    """Best cosine of each answer sentence against the evidence sentences: min and mean over the answer."""
    answer_sentences = sentences(answer)
    evidence_sentences = sentences(evidence)
    if embed is None or not answer_sentences or not evidence_sentences:
        return {}
    texts = [*answer_sentences, *evidence_sentences, question or answer]
    vectors = np.asarray(embed(texts), dtype=np.float32)
    vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9, None)
    answers = vectors[: len(answer_sentences)]
    support = vectors[len(answer_sentences) : len(answer_sentences) + len(evidence_sentences)]
    best = (answers @ support.T).max(axis=1)
    question_vector = vectors[-1]
    return {
        "min_similarity": float(best.min()),
        "mean_similarity": float(best.mean()),
        "question_support": float((support @ question_vector).max()),
    }


def injection_echo(answer: str, passages: Sequence[Passage]) -> float:
    """1.0 when the answer repeats what only an injected instruction in a passage asks for, or itself injects."""
    if injection_markers(answer):
        return 1.0
    suspicious = [passage for passage in passages if passage.suspicious]
    if not suspicious:
        return 0.0
    clean_words: set[str] = set()
    payload: set[str] = set()
    for passage in passages:
        for sentence in sentences(passage.text):
            words = set(content_words(sentence)) | set(re.findall(r"\S+\.\S+", sentence.lower()))
            (payload if injection_markers(sentence) else clean_words).update(words)
    payload -= clean_words
    answer_words = set(content_words(answer)) | set(re.findall(r"\S+\.\S+", answer.lower()))
    return 1.0 if payload & answer_words else 0.0


def user_turn_signals(message: str, link: Link, history_turns: int) -> dict[str, float]:
    """Cheap checks of a user turn: does it ask, does it sound like an assistant, which phenomena it shows."""
    words = [word.lower() for word in re.findall(r"[A-Za-z']+", message)]
    first = words[0] if words else ""
    trailing = message.rsplit("?", maxsplit=1)[-1] if "?" in message else ""
    return {
        "asks": 1.0
        if "?" in message
        or first
        in {"what", "who", "when", "where", "why", "how", "which", "tell", "explain", "describe", "can", "could"}
        else 0.0,
        "assistant_speak": 1.0 if ASSISTANT_SPEAK.search(message) else 0.0,
        "answers_itself": 1.0 if len(trailing.split()) > 12 else 0.0,
        "has_pronoun": 1.0 if PRONOUNS & set(words) else 0.0,
        "words": float(len(words)),
        "polar": 1.0 if first in POLAR_STARTS else 0.0,
        "why_how": 1.0 if {"why", "how", "explain", "reason"} & set(words) else 0.0,
        "closing_words": 1.0 if CLOSING_WORDS.search(message) else 0.0,
        "has_history": 1.0 if history_turns else 0.0,
    }
