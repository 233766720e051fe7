"""The built-in `grounded_qa` task: information-seeking conversations grounded in one document.

It owns its prompts and expectations (`prompts.py`), its judge schema (`judge.py`) and its rules
(`rules.py`); plug-in tasks reuse them by importing them from here.

Registered through codi's own entry point (`codi_agents.tasks`), exactly as a third-party task is.
"""

from codi_agents.tasks._base import Task
from codi_agents.tasks.grounded_qa.judge import GroundedJudgement
from codi_agents.tasks.grounded_qa.prompts import PROMPTS
from codi_agents.tasks.grounded_qa.rules import expectation, grounded_decision, grounded_user_check

__all__ = ["GroundedJudgement", "expectation", "grounded_decision", "grounded_user_check", "task"]

task = Task(
    name="grounded_qa",
    description="A user asks about a document; the assistant answers only from it, or says it does not say.",
    prompts=PROMPTS,
    judge_schema=GroundedJudgement,
    decide=grounded_decision,
    check_user=grounded_user_check,
    default_flow="grounded_qa",
    default_persona="curious_student",
    variables={"expectation": expectation},
    version="3",
)
