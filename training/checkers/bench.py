"""Time the shipped checkers as the critic would call them, on 2 threads.

    python -m training.checkers.bench [--model-dir training/out/<run>]

Turns: agent replies of the Doc2Dial dev conversations, each scored against three 800-character passages of
its document (the run's default chunk size), the user's last turn as context. Reported: median and 90th
percentile milliseconds per turn and per pair, and per 800-character passage for the injection detector.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from training.checkers.common import DATA, read_jsonl, runtime_package

CHUNK = 800


def turns(limit: int = 300) -> list[tuple[list[str], str, str]]:
    """(three passages, user's last turn, agent reply) from the Doc2Dial dev conversations."""
    text = runtime_package()._text
    out = []
    for conversation in read_jsonl(DATA / "conversations_doc2dial_dev_200.jsonl"):
        document = conversation["documents"][0]["text"]
        chunks = [document[i : i + CHUNK] for i in range(0, len(document), CHUNK - 100)]
        previous = ""
        for turn in conversation["turns"]:
            if turn["role"] == "user":
                previous = turn["text"] or ""
            elif turn["text"]:
                words = text.content_words(turn["text"])
                best = max(range(len(chunks)), key=lambda i: len(words & text.content_words(chunks[i])))
                out.append((chunks[max(0, best - 1) : best + 2], previous, turn["text"]))
        if len(out) >= limit:
            break
    return out[:limit]


def main(model_dir: Path | None) -> dict[str, float]:
    """Run the timings; prints and returns them."""
    checkers = runtime_package()
    from codi_agents.checkers._onnx import OnnxClassifier

    faith = (
        checkers.FaithfulnessChecker(OnnxClassifier(model_dir / "model.int8.onnx", threads=2))
        if model_dir
        else checkers.FaithfulnessChecker()
    )
    sample = turns()
    faith.score_reply(*sample[0][:1], sample[0][2])  # load the model outside the timing
    per_turn, pairs = [], []
    for passages, context, reply in sample:
        started = time.perf_counter()
        result = faith.score_reply(passages, reply, context)
        per_turn.append(1000 * (time.perf_counter() - started))
        pairs.append(len(result.sentences))
    report = {
        "turns": len(sample),
        "median_ms_per_turn": statistics.median(per_turn),
        "p90_ms_per_turn": statistics.quantiles(per_turn, n=10)[-1],
        "mean_pairs_per_turn": statistics.fmean(pairs),
        "ms_per_pair": sum(per_turn) / sum(pairs),
    }
    if not model_dir:
        detector = checkers.InjectionDetector()
        passages = [p for passages, _, _ in sample[:100] for p in passages]
        detector.score(passages[0])
        timings = []
        for passage in passages:
            started = time.perf_counter()
            detector.score(passage)
            timings.append(1000 * (time.perf_counter() - started))
        report["injection_median_ms_per_passage"] = statistics.median(timings)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(Path(sys.argv[sys.argv.index("--model-dir") + 1]) if "--model-dir" in sys.argv else None)
