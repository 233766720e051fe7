"""Fitting the critic's calibration: a fixed stratified split, a logistic fit, a versioned file that loads back."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from codi_agents import Settings
from codi_agents.critic import load_calibration
from codi_agents.critic._calibration import item_digest
from codi_agents.errors import UserError
from codi_agents.evaluation._evaluate import evaluate_file
from codi_agents.evaluation._fit import fit_calibration, fit_logistic, split_items, write_calibration
from codi_agents.evaluation._labelled import LabelledItem
from codi_agents.tasks import get_task
from codi_agents.testing import HashingEmbeddingFunction

FACTS = [
    ("The bridge opened in 1932 and is 503 metres long.", "When did the bridge open?", "It opened in 1932."),
    ("The river flows north through three provinces.", "Where does the river flow?", "It flows north."),
    ("The museum closes at 5 pm on Sundays.", "When does the museum close?", "At 5 pm on Sundays."),
    ("The festival lasts four days in early July.", "How long is the festival?", "It lasts four days."),
    ("The park covers 40 hectares of woodland.", "How big is the park?", "It covers 40 hectares."),
    ("The school teaches 600 pupils aged 11 to 18.", "How many pupils?", "It teaches 600 pupils."),
    ("The tower was designed by a local engineer.", "Who designed the tower?", "A local engineer designed it."),
    ("The lake freezes most winters.", "Does the lake freeze?", "Yes, it freezes most winters."),
]
INVENTIONS = [
    "I visited it last summer with my brother Karl, it was amazing.",
    "Honestly it was financed by Rothschild bankers from Vienna.",
    "Have you ever been there yourself?",
    "It was painted bright purple by Picasso.",
]


def labelled(n_sources: int = 2) -> list[LabelledItem]:
    items = []
    for source in range(n_sources):
        for i, (knowledge, question, answer) in enumerate(FACTS):
            items.append(
                LabelledItem(
                    id=f"s{source}-f{i}",
                    knowledge=knowledge,
                    history=[question],
                    response=answer,
                    label="faithful",
                    source=f"src{source}",
                )
            )
            items.append(
                LabelledItem(
                    id=f"s{source}-u{i}",
                    knowledge=knowledge,
                    history=[question],
                    response=INVENTIONS[i % len(INVENTIONS)],
                    label="unfaithful",
                    source=f"src{source}",
                )
            )
    return items


def test_the_split_is_stratified_deterministic_and_independent_of_order() -> None:
    items = labelled()
    fit, held = split_items(items, 0.5, seed=3)
    assert Counter((i.group, i.label) for i in fit) == Counter(
        {(g, lab): 4 for g in ("src0", "src1") for lab in ("faithful", "unfaithful")}
    )
    assert {i.id for i in fit}.isdisjoint({i.id for i in held}) and len(fit) + len(held) == len(items)
    again, _ = split_items(list(reversed(items)), 0.5, seed=3)
    assert {i.id for i in again} == {i.id for i in fit}
    other, _ = split_items(items, 0.5, seed=4)
    assert {i.id for i in other} != {i.id for i in fit}
    with pytest.raises(UserError, match="fraction"):
        split_items(items, 0.0)


def test_logistic_fit_finds_the_direction_of_the_evidence() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] - 2 * x[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    intercept, weights = fit_logistic(x, y, l2=0.1)
    assert weights[0] > 0 > weights[1]
    assert abs(weights[1]) > abs(weights[0])
    assert abs(intercept) < 0.5


def test_fit_writes_a_versioned_calibration_that_loads_and_marks_the_fitted_items(tmp_path: Path) -> None:
    items = labelled()
    result = fit_calibration(
        items,
        base=load_calibration(),
        task=get_task("grounded_qa"),
        embed=HashingEmbeddingFunction(),
        version="test-1",
        seed=1,
        source_name="hand-made",
    )
    calibration = result.calibration
    assert calibration.version == "test-1"
    assert "hand-made: 16 of 32 items" in calibration.fitted_on and "seed 1" in calibration.fitted_on
    assert sorted(calibration.fit_items) == sorted(item_digest(i) for i in result.fitted_ids)
    assert calibration.weights["unsupported_share"] < 0
    assert calibration.judge_weight_remote == load_calibration().judge_weight_remote
    assert result.fitted_metrics.balanced_accuracy >= 0.9
    assert result.held_out_metrics is not None and result.held_out_metrics.items == 16

    path = tmp_path / "calibration.toml"
    write_calibration(calibration, path, comment="fitted in a test")
    assert path.read_text().startswith("# fitted in a test")
    assert load_calibration(path) == calibration

    data_file = tmp_path / "items.jsonl"
    data_file.write_text("\n".join(item.model_dump_json() for item in items))
    report = evaluate_file(
        data_file, Settings(judge_weight=0.0), calibration=calibration, embedding_function=HashingEmbeddingFunction()
    )
    assert report.fitted is not None and report.fitted.items == 16
    assert report.held_out is not None and report.held_out.items == 16
    assert {r.id for r in report.results if r.fitted} == set(result.fitted_ids)
    assert report.calibration == "test-1"
    assert json.loads(json.dumps(report.as_dict()))["held_out"]["items"] == 16


def test_fitting_on_too_few_items_is_refused() -> None:
    with pytest.raises(UserError, match="at least"):
        fit_calibration(
            labelled()[:4],
            base=load_calibration(),
            task=get_task("grounded_qa"),
            embed=None,
            version="x",
        )


def test_the_shipped_calibration_is_fitted_and_skips_the_judge_on_the_embedded_model() -> None:
    calibration = load_calibration()
    assert calibration.version != "v0"
    assert calibration.fit_items and "stratified" in calibration.fitted_on
    assert calibration.judge_weight_embedded == 0.0
    assert calibration.judge_weight_remote >= 0.5


def test_a_written_calibration_reads_back_equal_whatever_its_text_holds(tmp_path: Path) -> None:
    awkward = load_calibration().model_copy(
        update={
            "version": 'v"2"\\beta',
            "fitted_on": "file \"a b.jsonl\"\nsecond line\t[weights] = 'x'",
            "weights": {"unsupported_share": -1.5, "novel_numbers": 0.0},
            "fit_items": [],
        }
    )
    path = tmp_path / "awkward.toml"
    write_calibration(awkward, path, comment="two\nlines")
    assert path.read_text().startswith("# two\n# lines\n")
    assert load_calibration(path) == awkward
