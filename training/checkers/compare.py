"""Compare faithfulness runs already scored by `evaluate.py`, from their `eval.json` (run-time scoring, lowest claim).

    python -m training.checkers.compare faith6-human3 faith6-human3-b2 faith6-soup-seeds
    python -m training.checkers.compare faith6-human3:faithfulness.int8 ...   # RUN:STEM reads eval.STEM.json,
                                                                             # written by evaluate --onnx STEM.onnx

One row per run: the mean over the four human-labelled sources of balanced accuracy on the tune half (where each
run's threshold was chosen) and on the check half (held out), the check half's mean AUC (no threshold), and BEGIN v2.
The last lines give the spread (mean, standard deviation, range) over the runs listed, which for runs of one recipe
that differ only in their seed is the noise any comparison between two single runs has to beat.
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

from training.checkers.common import OUT, REPORTS

SCORING = "min"
"""The run time's scoring: a reply is as faithful as its weakest claim."""
BEGIN_V2 = "begin_v2_dev_200"


def summary(report: dict[str, Any]) -> dict[str, float]:
    """Mean balanced accuracy of the tune and check halves, mean check-half AUC, and BEGIN v2's balanced accuracy."""
    rows = report[SCORING]

    def mean(half: str, metric: str) -> float:
        values = [row[metric] for name, row in rows.items() if name.startswith(half + ":")]
        if not values:
            raise SystemExit(f"{report['run']}: no {half}: rows in its eval.json; rerun training.checkers.evaluate")
        return statistics.fmean(values)

    return {
        "tune": mean("tune", "balanced_accuracy"),
        "check": mean("check", "balanced_accuracy"),
        "check AUC": mean("check", "auc"),
        "BEGIN v2": rows[BEGIN_V2]["balanced_accuracy"],
    }


def load(name: str) -> dict[str, Any]:
    """`eval.json` of run `name`, or `eval.STEM.json` for `RUN:STEM`; else their committed copy in `reports/`."""
    run, _, stem = name.partition(":")
    path = OUT / run / (f"eval.{stem}.json" if stem else "eval.json")
    committed = REPORTS / (f"{run}.{stem}.json" if stem else f"{run}.json")
    for candidate in (path, committed):
        if candidate.exists():
            return json.loads(candidate.read_text())
    raise SystemExit(f"neither {path} nor {committed} exists: run `python -m training.checkers.evaluate {run}` first")


def main(names: list[str]) -> None:
    if not names:
        raise SystemExit(__doc__)
    table = {name: summary(load(name)) for name in names}
    columns = list(next(iter(table.values())))
    print(f"{'run':36s}" + "".join(f"{c:>11s}" for c in columns))
    for name, row in table.items():
        print(f"{name:36s}" + "".join(f"{row[c]:11.3f}" for c in columns))
    if len(table) > 1:
        for label, stat in (("mean", statistics.fmean), ("sd", statistics.stdev)):
            print(f"{label:36s}" + "".join(f"{stat([r[c] for r in table.values()]):11.3f}" for c in columns))
        spans = [max(r[c] for r in table.values()) - min(r[c] for r in table.values()) for c in columns]
        print(f"{'range':36s}" + "".join(f"{span:11.3f}" for span in spans))


if __name__ == "__main__":
    main(sys.argv[1:])
