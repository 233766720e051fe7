"""One critic pass over an exchange: cheap signals, the LLM judge where it adds information, the task's rules.

It runs a task's judge schema and rules, so it sits above `codi_agents.tasks` (which only needs the
critic's measurements: `CriticInputs`, `Calibration`); import it as `codi_agents.critic._assess`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from codi_agents._record import Failure, Usage, UserCheck, Verdict
from codi_agents.critic._calibration import Calibration
from codi_agents.critic._inputs import CriticInputs
from codi_agents.critic._signals import Embed, grounding_signals
from codi_agents.critic._similarity import prefetch
from codi_agents.critic._user_turns import user_turn_signals
from codi_agents.llm._calls import RoleModel
from codi_agents.simulation._prompting import PromptBudget, critic_messages
from codi_agents.tasks._base import PromptContext


@dataclass
class Assessment:
    """The verdict on the reply, the check of the user turn, and what it cost."""

    verdict: Verdict
    user_check: UserCheck
    usage: Usage = field(default_factory=Usage)
    failure: Failure | None = None


def critic_inputs(
    context: PromptContext, *, calibration: Calibration, judge_weight: float, embed: Embed | None
) -> CriticInputs:
    """What a task's rules see of `context` before the judge runs: the exchange and its cheap signals.

    The one place `CriticInputs` is built, for the running critic and for fitting a calibration alike."""
    return CriticInputs(
        question=context.question,
        answer=context.answer,
        passages=context.passages,
        history=context.history,
        link_name=context.link_name,
        link=context.link,
        calibration=calibration,
        judge_weight=judge_weight,
        signals=grounding_signals(context.answer, context.passages, context.question, embed),
        user_signals=user_turn_signals(context.question, context.link, [turn.content for turn in context.history]),
    )


async def assess_exchange(
    context: PromptContext,
    *,
    critic: RoleModel | None,
    calibration: Calibration,
    judge_weight: float,
    embed: Embed | None,
    parse_retries: int,
) -> Assessment:
    """Judge `context.answer` to `context.question` against `context.passages`.

    The judge (`critic`) is skipped for closing turns, which make no claims, and when its weight
    is zero. When it runs but never parses, its failure is recorded; if it was meant to lead the
    decision, the turn is rejected as `critic_failed` rather than waved through on signals alone.
    """
    await prefetch(embed, context.answer, context.passages, context.question)  # batched with other conversations
    inputs = await asyncio.to_thread(
        critic_inputs, context, calibration=calibration, judge_weight=judge_weight, embed=embed
    )
    usage = Usage()
    failure = None
    if critic is not None and judge_weight > 0 and context.link.kind != "closing":
        budget = PromptBudget(critic.context_window, critic.max_tokens)
        result = await critic.structured(
            context.task.judge_schema, critic_messages(context, budget), parse_retries=parse_retries
        )
        usage = result.usage
        inputs.judgement = result.parsed
        if result.parsed is None:
            inputs.judge_error = result.error
            failure = Failure(
                stage="critic",
                error=f"{result.error} (after {len(result.raw_outputs)} attempts)",
                raw_output="\n---\n".join(result.raw_outputs),
                turn=context.turn_number,
            )
    verdict = context.task.decide(inputs)
    if failure is not None and calibration.judge_leads(judge_weight):
        verdict = verdict.model_copy(
            update={
                "accepted": False,
                "rejection": "critic_failed",
                "reasons": f"the critic's output could not be parsed: {inputs.judge_error}",
            }
        )
    return Assessment(verdict=verdict, user_check=context.task.check_user(inputs), usage=usage, failure=failure)
