"""Score an ensemble of faithfulness runs (the mean log-odds of their reply scores) on their shared evaluation splits.

    python -m training.checkers.ensemble faith6-human3 faith6-human3-b2 faith6-human3-b3   # any runs with one split

A diagnostic, not a shipped model: it costs one checker pass per run. If averaging the predictions of runs that
differ only in their seed gains little over one run, the checker's errors are shared by every draw of the recipe
(a limit of the model and data, not of one unlucky run), and distilling the ensemble into one model is not worth a
session. Each run is scored as the run time scores (lowest claim, `evaluate.py`); the threshold is chosen on the
tune half and the same table as `evaluate.py`'s is printed. Every run must share the first one's splits.
"""

from __future__ import annotations

import sys

import numpy as np

from training.checkers.common import OUT, runtime_package
from training.checkers.compare import SCORING, summary
from training.checkers.evaluate import labelled_records, rows_at_tuned_threshold, score_records
from training.checkers.runs import RUNS

EPSILON = 1e-6


def mean_log_odds(scores: list[np.ndarray]) -> np.ndarray:
    """The probability whose log-odds is the mean of the runs' log-odds."""
    clipped = [np.clip(s, EPSILON, 1 - EPSILON) for s in scores]
    return 1 / (1 + np.exp(-np.mean([np.log(p / (1 - p)) for p in clipped], axis=0)))


def main(runs: list[str]) -> None:
    if not runs:
        raise SystemExit(__doc__)
    unknown = [run for run in runs if run not in RUNS or not (OUT / run / "model.int8.onnx").exists()]
    if unknown:
        raise SystemExit(f"no export for {', '.join(unknown)}: run training.checkers.export first")
    checkers = runtime_package()
    from codi_agents.checkers._onnx import OnnxClassifier

    records, groups, labels = labelled_records(runs[0])
    scores = []
    for run in runs:
        checker = checkers.FaithfulnessChecker(OnnxClassifier(OUT / run / "model.int8.onnx"), threshold=0.5)
        scores.append(score_records(checker, records)[SCORING])
    threshold, rows = rows_at_tuned_threshold(mean_log_odds(scores), groups, labels)
    means = summary({"run": "ensemble", SCORING: rows})
    print(
        f"ensemble of {len(runs)} (threshold {threshold:.2f} chosen on the tune half): "
        + ", ".join(f"{name} {value:.3f}" for name, value in means.items())
    )
    for group, row in rows.items():
        print(f"  {group:28} BA {row['balanced_accuracy']:.3f}  AUC {row['auc']:.3f}  n={row['n']}")


if __name__ == "__main__":
    main(sys.argv[1:])
