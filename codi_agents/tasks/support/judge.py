"""The LLM judge's typed verdict for customer support: the grounded fields plus the support rubric."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from codi_agents.tasks.grounded_qa.judge import GroundedJudgement

GoalProgress = Literal["none", "partial", "resolved"]

_PROGRESS_WORDS: dict[str, GoalProgress] = {
    "none": "none",
    "no": "none",
    "no progress": "none",
    "partial": "partial",
    "partly": "partial",
    "some": "partial",
    "in progress": "partial",
    "resolved": "resolved",
    "solved": "resolved",
    "done": "resolved",
    "complete": "resolved",
    "completed": "resolved",
}


class SupportJudgement(GroundedJudgement):
    """Judge one reply of a support agent grounded in help-page passages. Reasons come first (inherited)."""

    step_is_actionable: bool = Field(
        description="The reply gives a concrete next step (a form, a place, a requirement, an action), or honestly "
        "says the help page does not cover the case and points to contacting support."
    )
    invents_contact_details: bool = Field(
        description="The reply gives a phone number, address, e-mail, web link or opening hours not in the passages."
    )
    goal_progress: GoalProgress = Field(
        description='How close the customer is to their goal after this reply: "none", "partial" or "resolved".'
    )

    @field_validator("goal_progress", mode="before")
    @classmethod
    def _normalise_progress(cls, value: object) -> object:
        if isinstance(value, str):
            return _PROGRESS_WORDS.get(value.strip().strip(".").lower(), value)
        return value
