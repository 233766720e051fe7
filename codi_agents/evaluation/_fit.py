"""Fit the critic's calibration on labelled items: logistic weights over the cheap signals and a threshold.

The split is fixed and documented: within each (source, label) stratum, items are ordered by a
hash of `seed` and their id (so neither file order nor the other items matter) and the first
`fraction` of them are fitted on; the rest are held out. Weights come from an L2-regularised
logistic regression of "faithful" on the signals (Newton's method, a few lines of numpy); the
threshold is the one that maximises balanced accuracy of the task's full decision rule on the
fitted items. The result is a new, versioned `Calibration` that remembers which items it saw.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tomlkit

from codi_agents.critic._assess import critic_inputs
from codi_agents.critic._calibration import Calibration, item_digest
from codi_agents.critic._inputs import CriticInputs
from codi_agents.critic._similarity import Embed
from codi_agents.errors import UserError
from codi_agents.evaluation._items import item_context
from codi_agents.evaluation._labelled import LabelledItem
from codi_agents.evaluation._metrics import Metrics
from codi_agents.tasks._base import Task

FEATURES = (
    "unsupported_share",
    "unsupported_outside_question",
    "max_sentence_unsupported",
    "unsupported_pairs",
    "novel_numbers",
    "novel_names",
    "personal_claims",
    "asks_back",
    "question_overlap",
    "min_similarity",
    "mean_similarity",
    "faithfulness_logit",
    "faithfulness_mean_logit",
)
"""Signals the logistic model weighs: properties of the reply against the passages, not of the dataset.
The checker enters as log-odds (weakest claim and mean over claims): in repeated 5-fold cross-validation
on tune + BEGIN v2 this beat its probability alone (`bench/calibration_select.py`)."""
L2 = 10.0
"""Ridge penalty on the weights (not the intercept): keeps them small and stable; chosen by the same
cross-validation, from 0.3, 1, 3 and 10, on a few hundred items."""
NEWTON_STEPS = 50
MIN_FIT_ITEMS = 10


@dataclass(frozen=True)
class FitResult:
    """The fitted calibration, which items it was fitted on, and how its decision does on each part."""

    calibration: Calibration
    fitted_ids: list[str]
    held_out_ids: list[str]
    fitted_metrics: Metrics
    held_out_metrics: Metrics | None


def split_items(
    items: Sequence[LabelledItem], fraction: float = 0.5, seed: int = 0
) -> tuple[list[LabelledItem], list[LabelledItem]]:
    """(fit, held out): a `fraction` of each (source, label) stratum, chosen by hashing seed and id."""
    if not 0 < fraction <= 1:
        raise UserError(f"The fit fraction must be in (0, 1], got {fraction}.")
    strata: dict[tuple[str, str], list[LabelledItem]] = {}
    for item in items:
        strata.setdefault((item.group, item.label), []).append(item)
    chosen: set[str] = set()
    for members in strata.values():
        ordered = sorted(members, key=lambda item: hashlib.sha256(f"{seed}:{item.id}".encode()).hexdigest())
        chosen.update(item.id for item in ordered[: round(len(ordered) * fraction)])
    return [i for i in items if i.id in chosen], [i for i in items if i.id not in chosen]


def fit_calibration(
    items: Sequence[LabelledItem],
    *,
    base: Calibration,
    task: Task,
    embed: Embed | None,
    version: str,
    fraction: float = 0.5,
    seed: int = 0,
    features: Sequence[str] = FEATURES,
    l2: float = L2,
    source_name: str = "labelled data",
) -> FitResult:
    """A calibration fitted on a stratified part of `items`; judge weights and answerability are kept from `base`."""
    fit_items, held_out = split_items(items, fraction, seed)
    if len(fit_items) < MIN_FIT_ITEMS or len({item.label for item in fit_items}) < 2:
        raise UserError(
            f"Fitting needs at least {MIN_FIT_ITEMS} items with both labels in the fitted part; "
            f"got {len(fit_items)}. Give more labelled items or a larger fraction."
        )
    inputs = {item.id: _inputs(item, task, base, embed) for item in items}
    rows = np.array([[inputs[item.id].signals.get(name, 0.0) for name in features] for item in fit_items])
    faithful = np.array([0.0 if item.unfaithful else 1.0 for item in fit_items])
    intercept, weights = fit_logistic(rows, faithful, l2)
    calibration = base.model_copy(
        update={
            "version": version,
            "fitted_on": (
                f"{source_name}: {len(fit_items)} of {len(items)} items, stratified {fraction:.0%} by source "
                f"and label, seed {seed}; L2 {l2}"
            ),
            "intercept": round(intercept, 4),
            "weights": {name: round(float(w), 4) for name, w in zip(features, weights, strict=True)},
            "fit_items": sorted(item_digest(item.id) for item in fit_items),
        }
    )
    threshold = best_threshold(calibration, [inputs[item.id] for item in fit_items], fit_items, task)
    calibration = calibration.model_copy(update={"threshold": threshold})
    return FitResult(
        calibration=calibration,
        fitted_ids=[item.id for item in fit_items],
        held_out_ids=[item.id for item in held_out],
        fitted_metrics=decision_metrics(calibration, [inputs[i.id] for i in fit_items], fit_items, task),
        held_out_metrics=(
            decision_metrics(calibration, [inputs[i.id] for i in held_out], held_out, task) if held_out else None
        ),
    )


def fit_logistic(rows: np.ndarray, targets: np.ndarray, l2: float = L2) -> tuple[float, np.ndarray]:
    """Intercept and weights of an L2-regularised logistic regression (intercept not penalised)."""
    design = np.hstack([np.ones((len(rows), 1)), rows])
    penalty = l2 * np.diag([0.0] + [1.0] * rows.shape[1])
    coefficients = np.zeros(design.shape[1])
    for _ in range(NEWTON_STEPS):
        probabilities = 1 / (1 + np.exp(-np.clip(design @ coefficients, -40, 40)))
        gradient = design.T @ (probabilities - targets) + penalty @ coefficients
        hessian = (design.T * (probabilities * (1 - probabilities))) @ design + penalty + 1e-9 * np.eye(len(penalty))
        step = np.linalg.solve(hessian, gradient)
        coefficients -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return float(coefficients[0]), coefficients[1:]


def best_threshold(
    calibration: Calibration, inputs: Sequence[CriticInputs], items: Sequence[LabelledItem], task: Task
) -> float:
    """The threshold that maximises balanced accuracy of the full decision; the middle of the best range."""
    probabilities = sorted({round(calibration.probability(i.signals), 4) for i in inputs})
    candidates = sorted({0.5, *[(a + b) / 2 for a, b in itertools.pairwise(probabilities)]})
    scored = [
        (
            round(
                decision_metrics(
                    calibration.model_copy(update={"threshold": t}), inputs, items, task
                ).balanced_accuracy,
                6,
            ),
            t,
        )
        for t in candidates
    ]
    best = max(score for score, _ in scored)
    tied = [t for score, t in scored if score == best]
    return round(tied[len(tied) // 2], 4)


def decision_metrics(
    calibration: Calibration, inputs: Sequence[CriticInputs], items: Sequence[LabelledItem], task: Task
) -> Metrics:
    """How the task's decision with `calibration` (signals only) does on labelled items."""
    return Metrics.from_pairs(
        (item.unfaithful, not task.decide(replace(given, calibration=calibration)).accepted)
        for item, given in zip(items, inputs, strict=True)
    )


def write_calibration(calibration: Calibration, path: Path, *, comment: str = "") -> None:
    """Write a calibration as TOML, in the shape `load_calibration` reads, each field under its description."""
    document = tomlkit.document()
    for line in comment.splitlines():
        document.add(tomlkit.comment(line))
    for name, field_info in Calibration.model_fields.items():
        if name == "weights":
            continue
        if field_info.description:
            document.add(tomlkit.comment(field_info.description))
        value = getattr(calibration, name)
        if isinstance(value, list):
            items = tomlkit.array()
            items.extend(value)
            value = items.multiline(True)
        document.add(name, value)
    document.add(tomlkit.nl())
    document.add("weights", dict(calibration.weights))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(document), encoding="utf-8")


def _inputs(item: LabelledItem, task: Task, calibration: Calibration, embed: Embed | None) -> CriticInputs:
    """What the task's rules see of a labelled item, signals only (the fit weighs no judge)."""
    return critic_inputs(item_context(item, task), calibration=calibration, judge_weight=0.0, embed=embed)
