"""Choose the critic calibration's features and L2 penalty by repeated 5-fold cross-validation on dev data only.

Dev is `dev.jsonl` from `bench/calibration_split.py`: the tune half of the faithfulness checker's dev groups plus
BEGIN v2. Each candidate (a feature set and an L2 penalty) is fitted as `codi eval-critic --fit` fits (logistic
weights, then the threshold that maximises balanced accuracy of the task's decision) on four folds and decided on
the fifth; folds are redrawn `--repeats` times. The balanced accuracy of the held-out folds is reported separately
for the tune part and for BEGIN v2, and the candidate with the best mean of the two is chosen. `--check FILE`
then reports the chosen calibration, fitted on all of dev, on a file never used for the choice (`check.jsonl`).

Usage: python bench/calibration_select.py DIR [--repeats 8] [--check DIR/check.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from codi_agents.config._settings import Settings
from codi_agents.critic._assess import critic_inputs
from codi_agents.critic._calibration import Calibration, load_calibration
from codi_agents.critic._inputs import CriticInputs
from codi_agents.evaluation._fit import FEATURES, fit_logistic
from codi_agents.evaluation._items import item_context
from codi_agents.evaluation._labelled import LabelledItem, read_labelled
from codi_agents.retrieval._embeddings import default_embedding_function
from codi_agents.tasks import get_task

LEXICAL = [name for name in FEATURES if not name.startswith("faithfulness")]
CANDIDATES = {
    "probability (v3)": [*LEXICAL, "faithfulness"],
    "log-odds": [*LEXICAL, "faithfulness_logit"],
    "log-odds + mean log-odds": [*LEXICAL, "faithfulness_logit", "faithfulness_mean_logit"],
    "similarity + checker only": ["min_similarity", "mean_similarity", "faithfulness_logit", "faithfulness_mean_logit"],
    "checker only": ["faithfulness_logit", "faithfulness_mean_logit"],
}
PENALTIES = (0.3, 1.0, 3.0, 10.0)
BEGIN_SOURCE = "begin_v2"

Example = tuple[LabelledItem, CriticInputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="the folder bench/calibration_split.py wrote")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--check", type=Path, help="held-out file to report the chosen calibration on, once")
    args = parser.parse_args()
    settings = Settings()
    base = load_calibration(settings.critic_calibration)
    chooser = Chooser(base, settings)
    dev = chooser.examples(args.dir / "dev.jsonl")
    print(f"{'candidate':28s} {'L2':>5s}  CV tune  CV BEGIN v2  mean")
    scored = []
    for name, features in CANDIDATES.items():
        for l2 in PENALTIES:
            tune, begin = chooser.cross_validate(dev, features, l2, args.repeats)
            scored.append(((tune + begin) / 2, name, l2))
            print(f"{name:28s} {l2:5.1f}  {tune:.3f}    {begin:.3f}       {(tune + begin) / 2:.3f}", flush=True)
    _, name, l2 = max(scored)
    chosen = chooser.fit(dev, CANDIDATES[name], l2)
    parts = _parts(dev)
    print(
        f"chosen: {name}, L2 {l2}; fitted on all of dev: tune {chooser.accuracy(chosen, parts['tune']):.3f}, "
        f"BEGIN v2 {chooser.accuracy(chosen, parts['begin']):.3f} (in-sample)"
    )
    if args.check:
        check = chooser.examples(args.check)
        print(
            f"held out ({args.check.name}, {len(check)} items): chosen {chooser.accuracy(chosen, check):.3f}, "
            f"shipped {base.version} {chooser.accuracy(base, check):.3f}"
        )


class Chooser:
    """Fits and decides as `codi_agents.evaluation._fit` does, with the probability-free rules decided once."""

    def __init__(self, base: Calibration, settings: Settings) -> None:
        self.base = base
        self.task = get_task(settings.task)
        self.embed = default_embedding_function(settings)
        self._vetoed: dict[str, bool] = {}

    def examples(self, path: Path) -> list[Example]:
        items, _ = read_labelled(path)
        return [
            (
                item,
                critic_inputs(item_context(item, self.task), calibration=self.base, judge_weight=0.0, embed=self.embed),
            )
            for item in items
        ]

    def fit(self, examples: Sequence[Example], features: Sequence[str], l2: float) -> Calibration:
        rows = np.array([[given.signals.get(name, 0.0) for name in features] for _, given in examples])
        faithful = np.array([0.0 if item.unfaithful else 1.0 for item, _ in examples])
        intercept, weights = fit_logistic(rows, faithful, l2)
        calibration = self.base.model_copy(
            update={"intercept": intercept, "weights": dict(zip(features, map(float, weights), strict=True))}
        )
        scores = self._probabilities(calibration, examples)
        levels = np.unique(np.round(scores, 4))
        candidates = sorted({0.5, *((levels[1:] + levels[:-1]) / 2)})
        unfaithful = np.array([item.unfaithful for item, _ in examples])
        vetoed = self._vetoes(examples)
        accuracies = [round(_balanced(vetoed | (scores < t), unfaithful), 6) for t in candidates]
        tied = [t for t, accuracy in zip(candidates, accuracies, strict=True) if accuracy == max(accuracies)]
        return calibration.model_copy(update={"threshold": round(float(tied[len(tied) // 2]), 4)})

    def accuracy(self, calibration: Calibration, examples: Sequence[Example]) -> float:
        """Balanced accuracy of the task's own decision with `calibration`."""
        rejected = np.array(
            [not self.task.decide(replace(given, calibration=calibration)).accepted for _, given in examples]
        )
        return _balanced(rejected, np.array([item.unfaithful for item, _ in examples]))

    def cross_validate(
        self, examples: Sequence[Example], features: Sequence[str], l2: float, repeats: int
    ) -> tuple[float, float]:
        """Mean held-out-fold balanced accuracy on the tune part and on BEGIN v2."""
        tune, begin = [], []
        for repeat in range(repeats):
            decided: list[tuple[Example, bool]] = []
            for fold in range(5):
                inside = [e for e in examples if _fold(e[0], repeat) != fold]
                outside = [e for e in examples if _fold(e[0], repeat) == fold]
                calibration = self.fit(inside, features, l2)
                rejected = self._vetoes(outside) | (self._probabilities(calibration, outside) < calibration.threshold)
                decided.extend(zip(outside, rejected, strict=True))
            for part, scores in (("tune", tune), ("begin", begin)):
                chosen = [(e, r) for e, r in decided if (e[0].source == BEGIN_SOURCE) == (part == "begin")]
                scores.append(
                    _balanced(np.array([r for _, r in chosen]), np.array([e[0].unfaithful for e, _ in chosen]))
                )
        return float(np.mean(tune)), float(np.mean(begin))

    def _vetoes(self, examples: Sequence[Example]) -> np.ndarray:
        """Rejected whatever the probability: the decision with a threshold of 0 (rules such as personal claims)."""
        for item, given in examples:
            if item.id not in self._vetoed:
                anything = self.base.model_copy(update={"threshold": 0.0})
                self._vetoed[item.id] = not self.task.decide(replace(given, calibration=anything)).accepted
        return np.array([self._vetoed[item.id] for item, _ in examples])

    @staticmethod
    def _probabilities(calibration: Calibration, examples: Sequence[Example]) -> np.ndarray:
        """As the decision sees them: an abstention counts as supported."""
        return np.array(
            [1.0 if given.signals.get("abstains") else calibration.probability(given.signals) for _, given in examples]
        )


def _parts(examples: Sequence[Example]) -> dict[str, list[Example]]:
    return {
        "tune": [e for e in examples if e[0].source != BEGIN_SOURCE],
        "begin": [e for e in examples if e[0].source == BEGIN_SOURCE],
    }


def _fold(item: LabelledItem, repeat: int) -> int:
    return int(hashlib.sha256(f"cv{repeat}:{item.id}".encode()).hexdigest()[:8], 16) % 5


def _balanced(rejected: np.ndarray, unfaithful: np.ndarray) -> float:
    return 0.5 * (float(rejected[unfaithful].mean()) + float((~rejected[~unfaithful]).mean()))


if __name__ == "__main__":
    main()
