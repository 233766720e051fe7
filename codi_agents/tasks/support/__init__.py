"""The built-in `support` task: a customer with a goal works through a problem with an agent grounded in help pages.

It proves the task abstraction: its own flow (`graphs/support.toml`, `graphs/support_quick.toml`),
personas (`personas/support/`), prompts, judge schema (`SupportJudgement`) and rules per reply, per
customer turn and per conversation (`rules.py`). Registered through codi's own entry point, exactly
as a third-party task is.
"""

from codi_agents.inputs._resources import data_dir
from codi_agents.tasks._base import Task
from codi_agents.tasks.support.judge import SupportJudgement
from codi_agents.tasks.support.prompts import PROMPTS
from codi_agents.tasks.support.rules import (
    expectation,
    support_conversation_check,
    support_decision,
    support_user_check,
    topic,
)

task = Task(
    name="support",
    description="A customer with a goal works through a problem with an agent grounded in help pages; "
    "kept when the goal is reached with grounded steps.",
    prompts=PROMPTS,
    judge_schema=SupportJudgement,
    decide=support_decision,
    check_user=support_user_check,
    accept_conversation=support_conversation_check,
    default_flow="support",
    persona_dirs=(data_dir("personas") / "support",),
    default_personas=(
        "frustrated_customer",
        "methodical_customer",
        "first_time_senior",
        "customer_in_a_hurry",
        "second_language_customer",
    ),
    variables={"expectation": expectation, "topic": topic},
    version="2",
)
