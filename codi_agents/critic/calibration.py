"""The critic's calibration: how cheap signals combine into a probability, and where thresholds sit.

Stored as a versioned TOML file (`calibration.toml` beside this module), fitted on labelled data
by `codi eval-critic --fit` (see `critic/fit.py`), never as constants scattered in code. The version
enters the settings fingerprint, so a new calibration means new conversation ids.
"""

from __future__ import annotations

import math
import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    judge_weight_embedded: float = Field(ge=0, le=1, description="Judge weight when the critic is the local model.")
    judge_weight_remote: float = Field(ge=0, le=1, description="Judge weight when the critic is a configured endpoint.")
    question_support_answerable: float = Field(
        default=0.6, description="Question-to-passage similarity above which the passages likely hold the answer."
    )

    def probability(self, signals: dict[str, float]) -> float:
        """P(turn is faithful | signals); missing signals count as 0."""
        logit = self.intercept + sum(weight * signals.get(name, 0.0) for name, weight in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(min(logit, 40.0), -40.0)))


def load_calibration(path: Path | None = None) -> Calibration:
    """Read a calibration file (the shipped one by default)."""
    return _load(path or DEFAULT_CALIBRATION_FILE)


@lru_cache(maxsize=8)
def _load(path: Path) -> Calibration:
    try:
        with path.open("rb") as handle:
            return Calibration.model_validate(tomllib.load(handle))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"Critic calibration {path} cannot be read: {exc}") from exc
