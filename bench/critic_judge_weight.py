"""How balanced accuracy moves with the judge weight, from one `codi eval-critic` run that judged every item.

    codi eval-critic ITEMS.jsonl --judge-weight 1 --json judged.json      # the judge runs on every item
    python bench/critic_judge_weight.py judged.json [--calibration FILE]

Replays the decision (`grounded_decision`) on the recorded signals and judge outputs for a grid
of judge weights, so one slow run with the 135M judge answers "should the judge run at all, and
with what weight". A judge output that did not parse counts as `critic_failed` when the judge
would lead (weight >= 0.5), and as no judge below that, as in `assess_exchange`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from codi_agents.critic import CriticInputs, load_calibration
from codi_agents.evaluation._items import EVALUATION_LINK
from codi_agents.evaluation._metrics import Metrics
from codi_agents.tasks.grounded_qa import GroundedJudgement, grounded_decision

AUDIT_KEYS = {"signal_probability", "judge_weight", "judge_probability", "passages_answer"}
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("judged", type=Path)
    parser.add_argument("--calibration", type=Path, default=None)
    args = parser.parse_args()
    calibration = load_calibration(args.calibration)
    results = json.loads(args.judged.read_text())["results"]
    print(f"{len(results)} items; judge outputs parsed for {sum(1 for r in results if r['judge'])}")
    print(f"{'judge weight':>12} {'bal.acc':>8} {'precision':>9} {'recall':>7} {'specificity':>11}")
    for weight in WEIGHTS:
        pairs = []
        for result in results:
            judgement = GroundedJudgement.model_validate(result["judge"]) if result["judge"] else None
            inputs = CriticInputs(
                question="",
                answer="",
                passages=[],
                history=[],
                link_name="evaluation",
                link=EVALUATION_LINK,
                calibration=calibration,
                judge_weight=weight,
                signals={k: v for k, v in result["signals"].items() if k not in AUDIT_KEYS},
                judgement=judgement if weight > 0 else None,
            )
            failed = calibration.judge_leads(weight) and judgement is None
            rejected = failed or not grounded_decision(inputs).accepted
            pairs.append((result["label"] == "unfaithful", rejected))
        m = Metrics.from_pairs(pairs)
        print(f"{weight:12.2f} {m.balanced_accuracy:8.3f} {m.precision:9.3f} {m.recall:7.3f} {m.specificity:11.3f}")


if __name__ == "__main__":
    main()
