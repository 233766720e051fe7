"""Scores of a student's reply against human replies: SQuAD-style token metrics, SacreBLEU, abstention.

Normalisation (SQuAD v1.1): lower case, drop punctuation, drop the articles a/an/the, collapse
whitespace. Token F1, exact match and token recall take the maximum over the references of a
turn. Abstention is explicit: on a turn the human marked unanswerable, the reply is right (1 on
every metric) exactly when it abstains; on an answerable turn, an abstaining reply scores 0.
A reply abstains when codi's critic would say so: it matches the critic's abstention pattern
("the document does not say", "I cannot find", "no information", ...). BLEU is SacreBLEU's
corpus BLEU over the answerable turns' first references, as in the DialDoc 2021 shared task.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from codi_agents.critic._signals import ABSTENTION

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _overlap(prediction: str, reference: str) -> tuple[int, int, int]:
    """Shared tokens, prediction tokens and reference tokens after normalisation."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    return common, len(predicted), len(expected)


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall; two empty texts agree (1.0)."""
    common, predicted, expected = _overlap(prediction, reference)
    if predicted == 0 or expected == 0:
        return float(predicted == expected)
    if common == 0:
        return 0.0
    precision, recall = common / predicted, common / expected
    return 2 * precision * recall / (precision + recall)


def token_recall(prediction: str, reference: str) -> float:
    """Share of the reference's tokens the prediction contains (counted with multiplicity)."""
    common, _, expected = _overlap(prediction, reference)
    return 1.0 if expected == 0 else common / expected


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised texts are equal."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def abstains(reply: str) -> bool:
    """True when the reply says the document does not give the answer (the critic's rule)."""
    return bool(ABSTENTION.search(" ".join(reply.split())))


@dataclass(frozen=True)
class TurnScore:
    """The scores of one reply."""

    f1: float
    em: float
    recall: float
    abstained: bool


def score_reply(reply: str, references: Sequence[str], *, unanswerable: bool = False) -> TurnScore:
    """Score one reply: max over references, with the abstention rule of the module docstring."""
    abstained = abstains(reply)
    if unanswerable:
        value = 1.0 if abstained else 0.0
        return TurnScore(value, value, value, abstained)
    if abstained or not references:
        return TurnScore(0.0, 0.0, 0.0, abstained)
    return TurnScore(
        f1=max(token_f1(reply, ref) for ref in references),
        em=max(exact_match(reply, ref) for ref in references),
        recall=max(token_recall(reply, ref) for ref in references),
        abstained=abstained,
    )


def corpus_bleu(replies: Sequence[str], references: Sequence[str]) -> float | None:
    """SacreBLEU corpus BLEU (default 13a tokenisation) of replies against one reference each; None if empty."""
    if not replies:
        return None
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(replies), [list(references)]).score)
