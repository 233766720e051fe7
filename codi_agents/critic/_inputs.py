"""What the critic's decision rules see for one turn."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from codi_agents._record import Turn
from codi_agents.critic._calibration import Calibration
from codi_agents.inputs._flows import Link
from codi_agents.inputs._passages import Passage


@dataclass
class CriticInputs:
    """One user question, the assistant's reply, the passages it saw, and what was measured."""

    question: str
    answer: str
    passages: list[Passage]
    history: list[Turn]
    link_name: str
    link: Link
    calibration: Calibration
    judge_weight: float
    """How much the LLM judge counts against the cheap signals, in [0, 1]."""
    signals: dict[str, float] = field(default_factory=dict)
    user_signals: dict[str, float] = field(default_factory=dict)
    judgement: BaseModel | None = None
    """The judge's typed output, or None when it did not run or did not parse."""
    judge_error: str | None = None
