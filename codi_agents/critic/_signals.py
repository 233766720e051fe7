"""Cheap grounding signals of an assistant turn: computed for every turn, with no chat model.

- lexical support: the share of the reply's content words (overall, and in its worst sentence)
  and of its adjacent word pairs that occur in no passage, and counts of numbers and names that
  occur in no passage: strong, model-free evidence of invention;
- embedding support: for each reply sentence, its best cosine with any passage sentence under
  the packaged MiniLM (min and mean over the reply); a passage's sentence vectors are pooled from its own run
  (`retrieval._late_chunking`) and kept;
- behaviour: abstention ("the document does not say"), personal experiences and opinions an
  assistant cannot ground, questions asked back instead of answering, and echoes of
  instructions injected into passages;
- entailment: the trained faithfulness cross-encoder's score of the reply's weakest claim, and its
  log-odds for the weakest claim and on average over the claims (`codi_agents.checkers`): the signals
  that see paraphrase and contradiction;
- answerability: how well the passages cover the user's question (lexically and by embedding).

Each signal is a float named in `SIGNALS`, so calibration can weigh it and a verdict can show it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from codi_agents._security import injected_sentences, injection_markers
from codi_agents._sentences import sentences
from codi_agents.critic._checkers import reply_score
from codi_agents.critic._similarity import Embed, best_similarities, quoted_sentences, sentence_vectors
from codi_agents.critic._text import (
    STOPWORDS,
    content_words,
    letter_runs,
    names,
    near_pairs,
    number_set,
    numbers,
    stem,
    word_set,
)
from codi_agents.inputs._passages import Passage

__all__ = [
    "CHECKER_SIGNALS",
    "SIGNALS",
    "STOPWORDS",
    "Embed",
    "checker_bounds",
    "content_words",
    "faithfulness_signal",
    "grounding_signals",
    "injection_echo",
    "names",
    "numbers",
    "sentences",
    "stem",
]

COUNT_CAP = 3.0
"""Counts (novel numbers, names, personal claims) are capped, so a long list cannot swamp the other signals."""
LOGIT_EDGE = 1e-4
"""Checker probabilities are clipped to [edge, 1 - edge] before log-odds, so the log-odds stay within ±9.21."""

SIGNALS = {
    "answer_words": "content words in the reply",
    "unsupported_share": "share of the reply's content words found in no passage",
    "unsupported_outside_question": "the same, not counting words the user's message used",
    "max_sentence_unsupported": "the highest unsupported share of any reply sentence with two or more content words",
    "unsupported_pairs": "share of adjacent content-word pairs of the reply that no passage has close together",
    "novel_numbers": "numbers in the reply found in no passage (capped at 3)",
    "novel_names": "capitalised names in the reply found in no passage (capped at 3)",
    "personal_claims": "first-person experiences or opinions the passages do not themselves state (capped at 3)",
    "asks_back": "share of the reply's content words that sit in questions to the user",
    "abstains": "1 when the reply says the document does not give the answer",
    "question_overlap": "share of the user's content words the reply takes up",
    "question_coverage": "share of the user's content words found in the passages",
    "injection_echo": "1 when the reply repeats or carries out what only an instruction injected in a passage asks",
    "faithfulness": "the trained cross-encoder's probability that the reply's weakest claim is supported",
    "faithfulness_logit": "the same as log-odds (clipped at ±9.21), so the calibration weighs doubt near 0 and 1",
    "faithfulness_mean_logit": "the cross-encoder's log-odds averaged over the reply's claims",
    "min_similarity": "lowest, over reply sentences, of the best cosine with a passage sentence (MiniLM)",
    "mean_similarity": "mean, over reply sentences, of the best cosine with a passage sentence",
    "question_support": "best cosine of the user's message with a passage sentence",
}
"""Every grounding signal with what it measures (similarity signals need an embedding function)."""

ABSTENTION = re.compile(
    r"\b(do(es)?(n't| not) (say|mention|specify|state|include|cover|tell|provide|give|contain|explain|list"
    r"|address|answer)"
    r"|(is|are)(n't| not) (mentioned|specified|stated|covered|included|given|listed|provided|described|clear"
    r"|in the (document|passages?|text))"
    r"|no (information|details?|mention)|not (mentioned|specified|stated|covered)"
    r"|(can(not|'t)|could(n't| not)|unable to) (find|answer|tell|say|determine)"
    r"|i (don't|do not) (know|have (that|this|enough|any) information)"
    r"|(document|passages?|text|page|article) (is silent|says nothing|has no|gives no|does not))",
    re.IGNORECASE,
)
PERSONAL_CLAIM = re.compile(
    r"\b(i (love|like|hate|enjoy|prefer|think|believe|guess|feel|remember|watched|saw|wish|hope|want|need"
    r"|have (seen|been|had|never|heard|used|watched|read|played|to)|had|went|used to|grew up|play|played|own|live"
    r"|read|am (a|not|so|really|glad|sure|from))"
    r"|i'm (a|not|so|really|glad|sure|guilty|from)"
    r"|i've|me too|my (favou?rite|family|friends?|mom|dad|mother|father|wife|husband|kids?|son|daughter|house"
    r"|dog|cat|opinion|experience))\b",
    re.IGNORECASE,
)
_APOSTROPHE_SPACE = re.compile(r"\s+'\s*")
_DOTTED = re.compile(r"\S+\.\S+")


def grounding_signals(
    answer: str, passages: Sequence[Passage], question: str, embed: Embed | None, *, checker: bool = True
) -> dict[str, float]:
    """Signals of how well `answer` is supported by `passages`; see `SIGNALS` for each name.

    `checker=False` leaves out the trained cross-encoder's `faithfulness` (the costliest signal), for a
    caller that adds it later only if it is needed (`faithfulness_signal`)."""
    texts = [passage.text for passage in passages]
    evidence = "\n".join(texts)
    evidence_words = set().union(*map(word_set, texts))  # per passage: remembered across turns
    answer_words = content_words(answer)
    question_words = set(content_words(question))
    unsupported = [word for word in answer_words if word not in evidence_words]
    normalised = _APOSTROPHE_SPACE.sub("'", answer)
    signals = {
        "answer_words": float(len(answer_words)),
        "unsupported_share": _share(len(unsupported), len(answer_words)),
        "unsupported_outside_question": _share(
            sum(1 for word in unsupported if word not in question_words), len(answer_words)
        ),
        "max_sentence_unsupported": _worst_sentence(answer, evidence_words),
        "unsupported_pairs": _unsupported_pairs(answer_words, texts),
        "novel_numbers": min(float(len(numbers(answer) - set().union(*map(number_set, texts)))), COUNT_CAP),
        "novel_names": min(float(len(names(answer) - set().union(*map(letter_runs, texts)))), COUNT_CAP),
        "personal_claims": min(float(_personal_claims(normalised, evidence)), COUNT_CAP),
        "asks_back": _question_share(answer, len(answer_words)),
        "abstains": 1.0 if ABSTENTION.search(normalised) else 0.0,
        "question_overlap": _share(len(question_words & set(answer_words)), len(question_words)),
        "question_coverage": _share(len(question_words & evidence_words), len(question_words)),
        "injection_echo": injection_echo(answer, passages),
    }
    if checker:
        signals.update(faithfulness_signal(answer, passages, question))
    signals.update(similarity_signals(answer, passages, question, embed))
    return {name: round(value, 4) for name, value in signals.items()}


CHECKER_SIGNALS = ("faithfulness", "faithfulness_logit", "faithfulness_mean_logit")
"""The signals the trained faithfulness checker gives; each rises with support."""


def faithfulness_signal(answer: str, passages: Sequence[Passage], question: str) -> dict[str, float]:
    """`CHECKER_SIGNALS` from the trained checker, or nothing for a reply with no claim to check."""
    score = reply_score(answer, [passage.text for passage in passages], question)
    if score is None:
        return {}
    logits = [_logit(p) for p in score.sentence_scores]
    return {
        "faithfulness": round(score.score, 4),
        "faithfulness_logit": round(min(logits), 4),
        "faithfulness_mean_logit": round(sum(logits) / len(logits), 4),
    }


def checker_bounds(weights: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """The checker's signals at the ends that give the lowest and the highest calibrated probability under
    `weights` (each signal at whichever end its weight's sign asks for), to see whether its score can change
    a verdict."""
    log_odds = (_logit(0.0), _logit(1.0))
    ends = {"faithfulness": (0.0, 1.0), "faithfulness_logit": log_odds, "faithfulness_mean_logit": log_odds}
    lowest = {name: low if weights.get(name, 0.0) >= 0 else high for name, (low, high) in ends.items()}
    highest = {name: high if weights.get(name, 0.0) >= 0 else low for name, (low, high) in ends.items()}
    return lowest, highest


def _logit(probability: float) -> float:
    clipped = min(max(probability, LOGIT_EDGE), 1 - LOGIT_EDGE)
    return math.log(clipped / (1 - clipped))


def similarity_signals(
    answer: str, passages: Sequence[Passage], question: str, embed: Embed | None
) -> dict[str, float]:
    """Best cosine of each answer sentence against the passage sentences: min and mean over the answer.

    A reply sentence that is one of the passages' sentences word for word scores 1 without being embedded, as
    it did when passage sentences were embedded on their own (their vectors were then the same)."""
    answer_sentences = sentences(answer)
    if embed is None or not answer_sentences:
        return {}
    vectors = sentence_vectors(embed)
    support = vectors.passage_rows([passage.text for passage in passages])
    if not len(support):
        return {}
    quoted = quoted_sentences(answer_sentences, passages)
    asked = [sentence for sentence in answer_sentences if sentence not in quoted]
    rows = vectors([*asked, question.strip()] if question.strip() else asked)
    best_asked = iter(best_similarities(rows[: len(asked)], support))
    best = np.array([1.0 if sentence in quoted else float(next(best_asked)) for sentence in answer_sentences])
    signals = {"min_similarity": float(best.min()), "mean_similarity": float(best.mean())}
    if question.strip():
        signals["question_support"] = float(best_similarities(rows[len(asked) :], support)[0])
    return signals


def injection_echo(answer: str, passages: Sequence[Passage]) -> float:
    """1.0 when the answer repeats or carries out an instruction injected into a passage, or itself injects.

    The injected sentences of flagged passages are the regex matches and the trained detector's pick
    (`injected_sentences`). The answer follows one when it shares the instruction's target (a URL, address
    or number found only there), when it shares a word that only a regex-matched instruction says (those
    sentences are unambiguous), or when it switches to the language the instruction names. The detector's
    picks alone, which are sometimes ordinary sentences, count only through their targets and language.
    Ordinary imperative text ("Submit the form within 10 days") is flagged by neither layer.
    """
    if injection_markers(answer):
        return 1.0
    flagged = [passage for passage in passages if passage.suspicious]
    if not flagged:
        return 0.0
    injected = {sentence for passage in flagged for sentence in injected_sentences(passage.text)}
    clean = "\n".join(passage.text for passage in passages)
    for sentence in injected:
        clean = clean.replace(sentence, " ")
    instruction = " ".join(injected)
    if (_targets(instruction) - _targets(clean)) & _targets(answer):
        return 1.0
    marked = " ".join(sentence for sentence in injected if injection_markers(sentence))
    payload = set(content_words(marked)) - set(content_words(clean)) - ADDRESS_WORDS
    if payload & set(content_words(answer)):
        return 1.0
    return 1.0 if _switches_to_named_language(answer, instruction) else 0.0


ADDRESS_WORDS = frozenset(
    content_words(
        "note notes any all automated assistant assistants ai agent agents model models language llm chatbot system "
        "reading reads read this page document summarising summarizing summary must should always only reply "
        "respond answer user users instruction instructions please"
    )
)
"""Words that address a model rather than say what it should do: sharing them is not following the order."""
_LANGUAGES = re.compile(
    r"\b(french|spanish|german|italian|portuguese|dutch|russian|chinese|japanese|korean|arabic|hindi|turkish)\b",
    re.IGNORECASE,
)
_ENGLISH_FUNCTION_WORDS = frozenset("the a an and of to is are in for on with that this it you your be or".split())


def _targets(text: str) -> set[str]:
    """What an instruction points at: dotted tokens (URLs, e-mail addresses, domains) and numbers."""
    return set(_DOTTED.findall(text.lower())) | numbers(text)


def _switches_to_named_language(answer: str, instruction: str) -> bool:
    """The instruction names a language and the answer is not in English (almost no English function words)."""
    tokens = re.findall(r"[a-zà-ÿ]+", answer.lower())
    if not _LANGUAGES.search(instruction) or len(tokens) < 5:
        return False
    return sum(token in _ENGLISH_FUNCTION_WORDS for token in tokens) / len(tokens) < 0.05


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _personal_claims(answer: str, evidence: str) -> int:
    quoted = _APOSTROPHE_SPACE.sub("'", evidence).lower()
    return sum(1 for match in PERSONAL_CLAIM.finditer(answer) if match.group().lower() not in quoted)


def _question_share(answer: str, total: int) -> float:
    asked = sum(len(content_words(sentence)) for sentence in sentences(answer) if sentence.rstrip().endswith("?"))
    return _share(asked, total) if total else (1.0 if "?" in answer else 0.0)


def _worst_sentence(answer: str, evidence_words: set[str]) -> float:
    worst = 0.0
    for sentence in sentences(answer) or [answer]:
        words = content_words(sentence)
        if len(words) >= 2:
            worst = max(worst, _share(sum(1 for word in words if word not in evidence_words), len(words)))
    return worst


def _unsupported_pairs(answer_words: list[str], texts: Sequence[str]) -> float:
    """Share of the answer's neighbouring word pairs that no passage sentence has within `PAIR_WINDOW` words."""
    pairs = list(itertools.pairwise(answer_words))
    if not pairs:
        return 0.0
    near = set().union(*map(near_pairs, texts))
    return _share(sum(1 for pair in pairs if frozenset(pair) not in near and pair[0] != pair[1]), len(pairs))
