"""The critic's calibration: how cheap signals combine into a probability, and where thresholds sit.

Stored as a versioned TOML file (`calibration.toml` beside this module), fitted on labelled data
by `codi eval-critic --fit` (see `evaluation/_fit.py`), never as constants scattered in code. The version
enters the settings fingerprint, so a new calibration means new conversation ids.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codi_agents.critic._checkers import checker_digest
from codi_agents.errors import ConfigError

DEFAULT_CALIBRATION_FILE = Path(__file__).with_name("calibration.toml")


class Calibration(BaseModel):
    """A logistic model over grounding signals, a decision threshold, and the judge's weight by model class."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(description="Changes whenever the numbers change.")
    fitted_on: str = Field(default="", description="What data the numbers were fitted on.")
    intercept: float = Field(description="Logistic intercept.")
    weights: dict[str, float] = Field(description="Logistic weight per signal name.")
    threshold: float = Field(ge=0, le=1, description="A turn passes when its combined score reaches this.")
    judge_weight_embedded: float = Field(
        ge=0,
        le=1,
        description="Judge weight when the critic is the embedded model; 0 skips the judge (see decision.py).",
    )
    judge_weight_remote: float = Field(ge=0, le=1, description="Judge weight when the critic is a configured endpoint.")
    judge_leads_from: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="From this judge weight on, the judge's yes/no fields decide; below it the calibrated signals do.",
    )
    judge_rejected_cap: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="A judge that finds the reply ungrounded or unfaithful counts as at most this probability.",
    )
    question_support_answerable: float = Field(
        default=0.52,
        description="Question-to-passage-sentence cosine from which the passages likely hold the answer (with 0.5 "
        "coverage, 51% of Doc2Dial user questions count as answered by their own document's top 3 passages, 2% by "
        "another document's: `python bench/answerability.py`).",
    )
    question_coverage_answerable: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of the question's content words the passages must contain to likely hold the answer.",
    )
    fit_items: list[str] = Field(
        default_factory=list,
        description="Digests of the labelled item ids the numbers were fitted on (`item_digest`), so that an "
        "evaluation can tell held-out items from fitted ones.",
    )

    def probability(self, signals: dict[str, float]) -> float:
        """P(turn is faithful | signals); missing signals count as 0."""
        logit = self.intercept + sum(weight * signals.get(name, 0.0) for name, weight in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(min(logit, 40.0), -40.0)))

    def digest(self) -> str:
        """A hash of every number and label and of the checker models: what the fingerprints use.

        A refit counts even under an old version, and so do new checker weights (`checker_digest`)."""
        numbers = self.model_dump(mode="json")
        numbers["checkers"] = checker_digest()  # the faithfulness signal and injection flags come from these models
        text = json.dumps(numbers, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def judge_leads(self, weight: float) -> bool:
        """Whether a judge with this weight decides (else the calibrated signals do)."""
        return weight >= self.judge_leads_from

    def passages_answer(self, signals: dict[str, float]) -> bool | None:
        """Whether the passages likely hold the answer to the user's question, or None when nothing tells.

        Both must hold: the question's content words are mostly found in the passages, and some
        passage sentence is close to the question in meaning (when embeddings are available).
        """
        if "question_coverage" not in signals:
            return None
        covered = signals["question_coverage"] >= self.question_coverage_answerable
        if "question_support" not in signals:
            return covered
        return covered and signals["question_support"] >= self.question_support_answerable


def item_digest(item_id: str) -> str:
    """A short, stable digest of a labelled item's id, as stored in `Calibration.fit_items`."""
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:12]


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Read a calibration file (the shipped one when `path` is None or empty)."""
    return _load(Path(path) if path else DEFAULT_CALIBRATION_FILE)


@lru_cache(maxsize=8)
def _load(path: Path) -> Calibration:
    try:
        with path.open("rb") as handle:
            return Calibration.model_validate(tomllib.load(handle))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"Critic calibration {path} cannot be read: {exc}") from exc
