"""Is a reply supported by the passages it was shown? A small trained cross-encoder, scored offline.

The model (`models/faithfulness.int8.onnx`, see `models/faithfulness.md`) reads one
`[CLS] evidence [SEP] context [SEP] claim [SEP]` input of at most 112 tokens and gives the probability that
the claim is faithful to the evidence. A reply is scored one sentence at a time: for each sentence the
passage sentences sharing most words with it are gathered as its evidence (one pair per sentence keeps a
turn at a few milliseconds), and the reply's score is its weakest sentence's, so one unsupported sentence
is enough to reject it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codi_agents.checkers._onnx import MODELS, OnnxClassifier, model_settings
from codi_agents.checkers._text import PairLayout, encode_pairs, evidence_budget_words, select_evidence, split_sentences

MIN_CLAIM_WORDS = 4
"""A shorter sentence ("Sure.", "Yes, it is.") says little alone; it is scored together with its neighbour."""


@dataclass(frozen=True)
class ReplyScore:
    """How well a reply is supported: the overall score and where it is weakest."""

    score: float
    """Probability the reply is faithful: the lowest of its sentences' scores."""
    faithful: bool
    """`score >= threshold`."""
    sentences: tuple[str, ...]
    """The claims scored (short sentences joined to a neighbour)."""
    sentence_scores: tuple[float, ...]
    """One probability per claim, in order."""

    @property
    def weakest(self) -> str:
        """The least supported claim, to show why a reply was rejected."""
        return self.sentences[min(range(len(self.sentences)), key=self.sentence_scores.__getitem__)]


def claims(reply: str) -> list[str]:
    """The reply's sentences, with very short ones joined to the next (or, at the end, the previous) one."""
    out: list[str] = []
    pending = ""
    for sentence in split_sentences(reply):
        text = f"{pending} {sentence}".strip()
        if len(text.split()) < MIN_CLAIM_WORDS:
            pending = text
            continue
        out.append(text)
        pending = ""
    if pending:
        if out:
            out[-1] = f"{out[-1]} {pending}"
        else:
            out.append(pending)
    return out


class FaithfulnessChecker:
    """Scores (evidence, claim) pairs and whole replies against passages with the shipped cross-encoder."""

    def __init__(self, classifier: OnnxClassifier | None = None, threshold: float | None = None) -> None:
        self.classifier = classifier or OnnxClassifier(MODELS / "faithfulness.int8.onnx")
        settings = model_settings()["faithfulness"]
        self.threshold = float(settings["threshold"]) if threshold is None else threshold
        self.layout = PairLayout(**settings["layout"])

    def score_pairs(self, pairs: Sequence[tuple[str, str]], context: str = "") -> list[float]:
        """Probability that each claim is faithful to its evidence (evidence is cut to the token budget)."""
        items = [(evidence, context, claim) for evidence, claim in pairs]
        encoded = encode_pairs(self.classifier.tokenizer, items, self.layout)
        return [float(p) for p in self.classifier.probabilities(encoded)]

    def score_reply(self, passages: Sequence[str], reply: str, context: str = "") -> ReplyScore:
        """Score every claim of `reply` against the passages it was shown; `context` is the user's last turn.

        Raises ValueError on a reply with no words, which has nothing to check.
        """
        sentences = claims(reply)
        if not sentences:
            raise ValueError("the reply is empty: there is no claim to check against the passages")
        pairs = [
            (select_evidence(passages, claim, evidence_budget_words(self.layout, context, claim)), claim)
            for claim in sentences
        ]
        scores = self.score_pairs(pairs, context)
        score = min(scores)
        return ReplyScore(score, score >= self.threshold, tuple(sentences), tuple(scores))
