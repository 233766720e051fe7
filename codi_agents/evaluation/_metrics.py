"""How well the critic catches unfaithful responses: confusion matrix, precision, recall, balanced accuracy.

The positive class is "unfaithful" (what the critic must catch): a rejected turn is a positive
prediction. Balanced accuracy is the mean of the recall on each class, so a critic that rejects
everything (or nothing) scores 0.5 whatever the class balance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Metrics:
    """Confusion matrix (positive = unfaithful) and the scores derived from it."""

    true_positives: int
    """Unfaithful responses the critic rejected."""
    false_positives: int
    """Faithful responses the critic rejected."""
    true_negatives: int
    """Faithful responses the critic accepted."""
    false_negatives: int
    """Unfaithful responses the critic accepted."""

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bool, bool]]) -> Metrics:
        """From (labelled unfaithful, predicted unfaithful) pairs."""
        tp = fp = tn = fn = 0
        for actual, predicted in pairs:
            if actual and predicted:
                tp += 1
            elif predicted:
                fp += 1
            elif actual:
                fn += 1
            else:
                tn += 1
        return cls(tp, fp, tn, fn)

    @property
    def items(self) -> int:
        """Items counted."""
        return self.true_positives + self.false_positives + self.true_negatives + self.false_negatives

    @property
    def precision(self) -> float:
        """Of the rejected responses, the share that people found unfaithful (0 when none rejected)."""
        return _ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        """Of the unfaithful responses, the share the critic rejected (0 when there are none)."""
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def specificity(self) -> float:
        """Of the faithful responses, the share the critic accepted (0 when there are none)."""
        return _ratio(self.true_negatives, self.true_negatives + self.false_positives)

    @property
    def balanced_accuracy(self) -> float:
        """Mean of recall and specificity; with one class only, that class's recall."""
        positives = self.true_positives + self.false_negatives
        negatives = self.true_negatives + self.false_positives
        if positives and negatives:
            return (self.recall + self.specificity) / 2
        return self.recall if positives else self.specificity

    @property
    def accuracy(self) -> float:
        """Share of items judged as people judged them."""
        return _ratio(self.true_positives + self.true_negatives, self.items)

    def as_dict(self) -> dict[str, Any]:
        """Counts and scores, for JSON."""
        return {
            **asdict(self),
            "items": self.items,
            "balanced_accuracy": round(self.balanced_accuracy, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "specificity": round(self.specificity, 4),
            "accuracy": round(self.accuracy, 4),
        }


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
