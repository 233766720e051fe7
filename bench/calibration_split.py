"""Write the critic's tuning and check sets from the checker's dev split (groups it was never trained on).

`faithfulness_train.jsonl` records of the human-labelled sources (BEGIN v1, FaithDial audit, Q² WoW) whose group
is in the faithfulness checker's dev split (`bucket(group, 10) == 0`, see `training/checkers/data.py`) are halved
by group (SHA-256 of "calibration:" + group): `tune` (the calibration is fitted on it, with the hand-written items of
`tests/data/critic_labelled.jsonl`) and `check` (never tuned on). `dev` is `tune` plus BEGIN v2
(`faithfulness_begin_200.jsonl`, the dev set the critic's targets name): the shipped calibration is fitted on it.
`--tune-q2` also tunes on the Q² WoW tune half (tried on 2026-12-04, not shipped: 0.815 on `check.jsonl` against v5's
0.812); without it the split is v5's, which the shipped calibration was fitted on.

Usage: python bench/calibration_split.py TRAIN.jsonl OUT_DIR [BEGIN_V2.jsonl] [--tune-q2]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HUMAN_SOURCES = {"begin_v1", "faithdial_audit_gold", "faithdial_audit_models", "q2_wow"}
V5_TUNED_SOURCES = HUMAN_SOURCES - {"q2_wow"}
"""Calibration v5 checked Q² WoW but did not tune on it (the checker was thought near chance there); the critic then
stayed at chance on Q² (0.51 on check.jsonl) while the checker alone reached 0.61."""


def bucket(key: str, modulo: int) -> int:
    """As `training.checkers.common.bucket`."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % modulo


def group(record: dict[str, object]) -> str:
    """As `training.checkers.data.faith_group`."""
    meta = record.get("meta") or {}
    pair = meta.get("pair") if isinstance(meta, dict) else None
    return str(pair) if pair else "k:" + str(record["knowledge"]).strip().lower()


BEGIN_V2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "faithfulness_begin_200.jsonl"


def main(train: Path, out: Path, begin: Path = BEGIN_V2, tuned: set[str] = V5_TUNED_SOURCES) -> None:
    """Write `out/tune.jsonl`, `out/check.jsonl` and `out/dev.jsonl` (tune + BEGIN v2)."""
    out.mkdir(parents=True, exist_ok=True)
    tune = [line for line in Path("tests/data/critic_labelled.jsonl").read_text().splitlines() if _valid(line)]
    check: list[str] = []
    for line in train.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        key = group(record)
        if record["source"] not in HUMAN_SOURCES or bucket(key, 10) != 0:
            continue
        if bucket("calibration:" + key, 2) != 0:
            check.append(line)
        elif record["source"] in tuned:
            tune.append(line)
    (out / "tune.jsonl").write_text("\n".join(tune) + "\n", encoding="utf-8")
    (out / "check.jsonl").write_text("\n".join(check) + "\n", encoding="utf-8")
    dev = tune + [line for line in begin.read_text(encoding="utf-8").splitlines() if _valid(line)]
    (out / "dev.jsonl").write_text("\n".join(dev) + "\n", encoding="utf-8")
    print(f"tune: {len(tune)} items, check: {len(check)} items, dev: {len(dev)} items -> {out}")


def _valid(line: str) -> bool:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and bool(record.get("id")) and record.get("label") in {"faithful", "unfaithful"}


if __name__ == "__main__":
    flags = {"--tune-q2"}
    paths = [Path(arg) for arg in sys.argv[1:] if arg not in flags]
    main(*paths[:3], tuned=HUMAN_SOURCES if "--tune-q2" in sys.argv else V5_TUNED_SOURCES)
