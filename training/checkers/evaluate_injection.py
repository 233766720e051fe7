"""Evaluate an injection run through the run-time detector on its int8 export.

Records held out of training (`data.injection_split`): attacks of held-out families (recall on unseen
families), attacks of trained families on held-out hosts, and benign text of held-out hosts. The held-out
hosts are halved: the `tune` half sets the threshold (the highest of the 99th percentile of benign document
scores and the 97th of cue-word scores, at least 0.5), the `test` half gives the false-alarm rates.
The hand-made pages of `handmade.py` are reported one by one, and the false alarms on whole run-time passages of
the shared documents held out by `passages.py` (held out of training only for runs with `run_passages`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from training.checkers.common import OUT, bucket, runtime_package
from training.checkers.data import injection_split
from training.checkers.handmade import IMPERATIVES, INJECTIONS, pages
from training.checkers.runs import RUNS


def kind(record: dict[str, Any], held_families: set[str]) -> str:
    """Which evaluation group a held-out record belongs to."""
    family = record["meta"]["family"]
    if record["label"] == "injection":
        return "attack:unseen_family" if family in held_families else "attack:seen_family_unseen_host"
    if family == "benign_trigger_words":
        return "benign:cue_words"
    if family == "clean:document":
        return "benign:document"
    return "benign:other_hosts"


def held_out_passages(detector: Any, threshold: float, fifths: int = 1) -> dict[str, Any]:
    """False alarms on whole run-time passages of the held-out shared documents (`passages.py`), per source and,
    when more than one fifth is held out, per fifth as well (`doc2dial:fifth1`)."""
    from training.checkers.passages import run_passages

    rows = run_passages(held_out=True, fifths=fifths)
    verdicts = detector.score_chunks([row["text"] for row in rows])
    keys = [[row["source"]] + ([f"{row['source']}:fifth{row['bucket']}"] if fifths > 1 else []) for row in rows]
    out: dict[str, Any] = {}
    for key in sorted({key for row_keys in keys for key in row_keys}):
        scored = [verdict for row_keys, verdict in zip(keys, verdicts, strict=True) if key in row_keys]
        flagged = [(round(v.score, 3), v.sentence) for v in scored if v.score >= threshold]
        out[key] = {"n": len(scored), "flagged": len(flagged) / len(scored), "examples": flagged[:10]}
    return out


def evaluate_injection(run: str, ship: bool) -> dict[str, Any]:
    """Score the held-out records and the hand-made pages; returns (and writes) the report."""
    checkers = runtime_package()
    from codi_agents.checkers._onnx import OnnxClassifier

    config = RUNS[run]
    _, test, info = injection_split(config.seed, all_families=config.all_families)
    held_families = set(info["families"])
    detector = checkers.InjectionDetector(OnnxClassifier(OUT / run / "model.int8.onnx"), threshold=0.5)
    results = detector.score_chunks([r["text"] for r in test])
    scores = np.asarray([r.score for r in results])
    groups = [kind(r, held_families) for r in test]
    half = ["tune" if bucket("tune:" + (r["meta"].get("host_id") or r["id"]), 2) == 0 else "test" for r in test]

    def select(group: str, part: str | None = None) -> np.ndarray:
        return scores[[g == group and (part is None or h == part) for g, h in zip(groups, half, strict=True)]]

    threshold = max(
        0.5,
        float(np.quantile(select("benign:document", "tune"), 0.99)),
        float(np.quantile(select("benign:cue_words", "tune"), 0.97)),
    )
    report: dict[str, Any] = {"run": run, "held_out": info, "threshold": threshold, "groups": {}}
    for group in sorted(set(groups)):
        for part in ("tune", "test", None):
            values = select(group, part)
            if len(values):
                report["groups"][f"{group}:{part or 'all'}"] = {
                    "n": len(values),
                    "flagged": float((values >= threshold).mean()),
                }
    families: dict[str, list[float]] = {}
    for record, score in zip(test, scores, strict=True):
        if record["label"] == "injection" and record["meta"]["family"] in held_families:
            families.setdefault(record["meta"]["family"], []).append(float(score >= threshold))
    report["unseen_family_recall"] = {f: float(np.mean(v)) for f, v in sorted(families.items())}
    for name, sentences in (("handmade_injections", INJECTIONS), ("handmade_imperatives", IMPERATIVES)):
        verdicts = detector.score_chunks(pages(sentences))
        report[name] = [
            {"sentence": s, "score": round(v.score, 4), "flagged": v.score >= threshold, "flagged_sentence": v.sentence}
            for s, v in zip(sentences, verdicts, strict=True)
        ]
    false_alarms = [
        (r["meta"]["family"], round(float(s), 3), r["text"][:300])
        for r, s, g in zip(test, scores, groups, strict=True)
        if g.startswith("benign") and s >= threshold
    ]
    report["false_alarm_examples"] = false_alarms[:15]
    report["held_out_documents"] = held_out_passages(detector, threshold, config.held_fifths)
    (OUT / run / "eval.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "false_alarm_examples"}, indent=1))
    if ship:
        from training.checkers.evaluate import ship_model

        ship_model(run, "injection", {"threshold": threshold, "window_tokens": config.window_tokens, "run": run})
    return report
