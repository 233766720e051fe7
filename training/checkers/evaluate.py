"""Evaluate a trained run through the run-time code (`codi_agents.checkers`) on its int8 ONNX export.

    python -m training.checkers.evaluate faith-xsource
    python -m training.checkers.evaluate faith-final --ship     # also installs model + threshold in the package

Faithfulness: every record is scored as the run time scores a reply (claims = sentences, each against its
selected evidence, reply score = the lowest). The dev split is reported in two halves, as the critic's calibration
splits it: `tune:` (the threshold maximises the mean over its sources of balanced accuracy) and `check:` (held out
from every choice). Held-out sources and BEGIN v2 dev (`faithfulness_begin_200.jsonl`, never trained on) are
reported at the same threshold. `--onnx FILE` scores another export (the shipped one) on the run's splits.
The int8 model is compared with the torch model on the tune half.
Injection: see `evaluate_injection.py`.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from training.checkers.common import DATA, MODELS, OUT, REPORTS, bucket, read_jsonl, runtime_package
from training.checkers.data import faith_example, faith_group
from training.checkers.runs import RUNS, build_examples


def rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Balanced accuracy, recall (faithful accepted), specificity (unfaithful rejected), at a threshold."""
    accept = scores >= threshold
    recall = float(accept[labels == 1].mean()) if (labels == 1).any() else float("nan")
    specificity = float((~accept)[labels == 0].mean()) if (labels == 0).any() else float("nan")
    return {
        "balanced_accuracy": (recall + specificity) / 2,
        "recall": recall,
        "specificity": specificity,
        "n": len(labels),
        "positives": int(labels.sum()),
    }


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank form)."""
    order = scores.argsort().argsort() + 1
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((order[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score_records(checker: Any, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Reply scores (min and mean over claims) and whole-response scores (the training layout) per record."""
    out: dict[str, list[float]] = defaultdict(list)
    layout = checker.layout
    whole_pairs, contexts = [], []
    for record in records:
        context = record["history"][-1] if record["history"] else ""
        result = checker.score_reply([record["knowledge"]], record["response"], context)
        out["min"].append(result.score)
        out["mean"].append(statistics.fmean(result.sentence_scores))
        example = faith_example(record, layout)
        whole_pairs.append((example.evidence, example.claim))
        contexts.append(context)
    encoded = runtime_package()._text.encode_pairs(
        checker.classifier.tokenizer,
        [(e, c, claim) for (e, claim), c in zip(whole_pairs, contexts, strict=True)],
        layout,
    )
    out["whole"] = list(checker.classifier.probabilities(encoded))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def torch_scores(run: str, records: list[dict[str, Any]], layout: Any) -> np.ndarray:
    """The fp32 torch model on the whole-response inputs, to check the int8 export against."""
    import torch

    from training.checkers.export import load_trained
    from training.checkers.train import collate

    model = load_trained(run)
    text = runtime_package()._text
    tokenizer = text.load_tokenizer(str(MODELS / "tokenizer.json"))
    examples = [faith_example(r, layout) for r in records]
    encoded = text.encode_pairs(tokenizer, [(e.evidence, e.context, e.claim) for e in examples], layout)
    out = []
    with torch.no_grad():
        for start in range(0, len(encoded), 32):
            index = list(range(start, min(start + 32, len(encoded))))
            out.extend(torch.sigmoid(model(**collate(encoded, index)).logits.squeeze(-1)).tolist())
    return np.asarray(out)


def agreement(
    run: str, records: list[dict[str, Any]], quantised: np.ndarray, threshold: float, layout: Any
) -> dict[str, float]:
    """How far the int8 export's scores are from the fp32 torch model's, and how often decisions agree."""
    reference = torch_scores(run, records, layout)
    return {
        "decision_agreement": float(((reference >= threshold) == (quantised >= threshold)).mean()),
        "mean_abs_diff": float(np.abs(reference - quantised).mean()),
        "max_abs_diff": float(np.abs(reference - quantised).max()),
        "n": len(records),
    }


def pick_threshold(scores: np.ndarray, labels: np.ndarray, sources: list[str]) -> float:
    """The threshold with the best mean over sources of balanced accuracy."""
    best, best_value = 0.5, -1.0
    for threshold in np.linspace(0.02, 0.98, 97):
        values = [
            rates(scores[[s == src for s in sources]], labels[[s == src for s in sources]], threshold)[
                "balanced_accuracy"
            ]
            for src in sorted(set(sources))
        ]
        if statistics.fmean(values) > best_value:
            best, best_value = float(threshold), statistics.fmean(values)
    return best


def calibration_half(record: dict[str, Any]) -> str:
    """`tune` or `check`: the half of the dev groups the critic calibration is fitted on, or never sees.

    As `bench/calibration_split.py`. The checker is chosen and its threshold set on the tune half only, so that
    the check half (`check.jsonl`) stays held out from the checker as well as from the calibration.
    """
    return "tune" if bucket("calibration:" + faith_group(record), 2) == 0 else "check"


def labelled_records(run: str) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """The records a faithfulness run is evaluated on (its dev and held-out splits, then BEGIN v2), each one's group
    (`tune:SOURCE`, `check:SOURCE`, a held-out split's name or `begin_v2_dev_200`) and labels (1 = faithful)."""
    splits = build_examples(RUNS[run])
    ids = {e.tags["id"]: name for name, examples in splits.items() if name != "train" for e in examples}
    records = [r for r in read_jsonl(DATA / "training" / "faithfulness_train.jsonl") if r["id"] in ids]
    all_records = records + list(read_jsonl(DATA / "faithfulness_begin_200.jsonl"))
    names = [ids.get(r["id"], "begin_v2_dev_200") for r in all_records]
    groups = [
        f"{calibration_half(r)}:{r['source']}" if names[i] == "dev" else names[i] for i, r in enumerate(all_records)
    ]
    return all_records, groups, np.asarray([int(r["label"] == "faithful") for r in all_records])


def rows_at_tuned_threshold(
    scores: np.ndarray, groups: list[str], labels: np.ndarray
) -> tuple[float, dict[str, dict[str, float]]]:
    """The threshold chosen on the tune half, and every group's rates and AUC at it."""
    tune = np.asarray([g.startswith("tune:") for g in groups])
    threshold = pick_threshold(scores[tune], labels[tune], [g for g, t in zip(groups, tune, strict=True) if t])
    rows = {}
    for group in sorted(set(groups)):
        mask = np.asarray([g == group for g in groups])
        rows[group] = rates(scores[mask], labels[mask], threshold) | {"auc": auc(scores[mask], labels[mask])}
    return threshold, rows


def evaluate_faith(run: str, ship: bool, onnx: Path | None = None) -> dict[str, Any]:
    """Score every evaluation split of a faithfulness run (or another export, `onnx`, on the run's splits)."""
    checkers = runtime_package()
    from codi_agents.checkers._onnx import OnnxClassifier

    config = RUNS[run]
    classifier = OnnxClassifier(onnx or OUT / run / "model.int8.onnx")
    checker = checkers.FaithfulnessChecker(classifier, threshold=0.5)
    report: dict[str, Any] = {"run": run, "config": {k: str(v) for k, v in config.__dict__.items()}}
    all_records, sources, labels = labelled_records(run)
    scored = score_records(checker, all_records)
    dev = np.asarray([s.startswith("tune:") for s in sources])
    report["thresholds"] = {}
    for method in ("min", "mean", "whole"):
        report["thresholds"][method], report[method] = rows_at_tuned_threshold(scored[method], sources, labels)
    if onnx:
        write_report(report, f"eval.{onnx.stem}.json", f"{run}.{onnx.stem}.json")
        return report
    if (OUT / run / "final.pt").exists():
        report["int8_vs_fp32_dev"] = agreement(
            run,
            [r for r, d in zip(all_records, dev, strict=True) if d][::4],
            scored["whole"][dev][::4],
            report["thresholds"]["whole"],
            checker.layout,
        )
    write_report(report, "eval.json", f"{run}.json")
    if ship:
        ship_model(
            run,
            "faithfulness",
            {"threshold": report["thresholds"]["min"], "layout": checker.layout.__dict__, "run": run},
        )
    return report


def write_report(report: dict[str, Any], name: str, committed_name: str) -> None:
    """The report beside the run (`training/out/RUN/NAME`) and its committed copy (`reports/COMMITTED_NAME`)."""
    text = json.dumps(report, indent=1)
    (OUT / report["run"]).mkdir(parents=True, exist_ok=True)
    (OUT / report["run"] / name).write_text(text)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / committed_name).write_text(text + "\n")


def ship_model(run: str, name: str, settings: dict[str, Any]) -> None:
    """Copy the int8 model into the package and record its settings in `models/checkers.json`."""
    shutil.copyfile(OUT / run / "model.int8.onnx", MODELS / f"{name}.int8.onnx")
    path = MODELS / "checkers.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current[name] = settings
    path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")


def print_report(report: dict[str, Any]) -> None:
    """The tables of a faithfulness report."""
    for method in ("min", "mean", "whole"):
        print(f"\n{method} (threshold {report['thresholds'][method]:.2f} chosen on the tune half of dev)")
        tuned = [row["balanced_accuracy"] for group, row in report[method].items() if group.startswith("tune:")]
        print(f"  mean BA over the tune half's sources: {statistics.fmean(tuned):.3f}")
        for group, row in report[method].items():
            print(
                f"  {group:28} BA {row['balanced_accuracy']:.3f}  recall {row['recall']:.3f}  "
                f"spec {row['specificity']:.3f}  AUC {row['auc']:.3f}  n={row['n']}"
            )
    print("int8 vs fp32 (dev):", report.get("int8_vs_fp32_dev"))


if __name__ == "__main__":
    run_name = sys.argv[1]
    if RUNS[run_name].task == "inject":
        from training.checkers.evaluate_injection import evaluate_injection

        evaluate_injection(run_name, "--ship" in sys.argv)
    else:
        onnx_file = Path(sys.argv[sys.argv.index("--onnx") + 1]) if "--onnx" in sys.argv else None
        if onnx_file and "--ship" in sys.argv:
            sys.exit("--ship installs the run's own export; it cannot be combined with --onnx FILE")
        print_report(evaluate_faith(run_name, "--ship" in sys.argv, onnx_file))
