"""One critic pass over an exchange: cheap signals, the LLM judge where it adds information, the task's rules.

It runs a task's judge schema and rules, so it sits above `codi_agents.tasks` (which only needs the
critic's measurements: `CriticInputs`, `Calibration`); import it as `codi_agents.critic._assess`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from codi_agents._record import Failure, Usage, UserCheck, Verdict
from codi_agents.critic._calibration import Calibration
from codi_agents.critic._inputs import CriticInputs
from codi_agents.critic._signals import CHECKER_SIGNALS, Embed, checker_bounds, faithfulness_signal, grounding_signals
from codi_agents.critic._similarity import prefetch
from codi_agents.critic._user_turns import user_turn_signals
from codi_agents.llm._calls import RoleModel
from codi_agents.simulation._prompting import PromptBudget, critic_messages
from codi_agents.tasks._base import PromptContext

CHECKER_SKIPPED = "faithfulness_skipped"
"""Signal set to 1 when the faithfulness checker was not run because its score could not change the verdict
(the task's rules give the same outcome with the checker's signals at their two ends, `checker_bounds`; the
calibrated probability then counts them as 0)."""


@dataclass
class Assessment:
    """The verdict on the reply, the check of the user turn, and what it cost."""

    verdict: Verdict
    user_check: UserCheck
    usage: Usage = field(default_factory=Usage)
    failure: Failure | None = None


def critic_inputs(
    context: PromptContext,
    *,
    calibration: Calibration,
    judge_weight: float,
    embed: Embed | None,
    checker: bool = True,
) -> CriticInputs:
    """What a task's rules see of `context` before the judge runs: the exchange and its cheap signals.

    The one place `CriticInputs` is built, for the running critic and for fitting a calibration alike.
    `checker=False` leaves the faithfulness checker's signal out (see `assess_exchange`)."""
    return CriticInputs(
        question=context.question,
        answer=context.answer,
        passages=context.passages,
        history=context.history,
        link_name=context.link_name,
        link=context.link,
        calibration=calibration,
        judge_weight=judge_weight,
        signals=grounding_signals(context.answer, context.passages, context.question, embed, checker=checker),
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
    always_check: bool = False,
) -> Assessment:
    """Judge `context.answer` to `context.question` against `context.passages`.

    The judge (`critic`) is skipped for closing turns, which make no claims, and when its weight
    is zero. When it runs but never parses, its failure is recorded; if it was meant to lead the
    decision, the turn is rejected as `critic_failed` rather than waved through on signals alone.

    The cheap signals are computed in a worker thread while the judge's request is in flight. The
    faithfulness checker, the costliest signal, runs only if its score can change the verdict: the task's
    rules are applied with its signals at both ends, and if both give the same outcome (a leading judge decided, a
    veto such as a personal claim applies, a closing turn is judged by rule) it is skipped and the verdict's
    signals say so (`CHECKER_SKIPPED`). `always_check` runs it on every turn (`codi eval-critic` reports it alone).
    """
    judged = critic is not None and judge_weight > 0 and context.link.kind != "closing"
    deferred = not always_check and any(name in calibration.weights for name in CHECKER_SIGNALS)
    measured = _measure(context, calibration=calibration, judge_weight=judge_weight, embed=embed, checker=not deferred)
    usage = Usage()
    failure = None
    if critic is not None and judged:
        budget = PromptBudget(critic.context_window, critic.max_tokens)
        signals = asyncio.ensure_future(measured)
        try:
            result = await critic.structured(
                context.task.judge_schema, critic_messages(context, budget), parse_retries=parse_retries
            )
        finally:  # a refused request ends the turn; the signals' thread finishes either way
            inputs = await signals
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
    else:
        inputs = await measured
    if deferred:
        await _add_checker_if_decisive(context, inputs)
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


async def _measure(
    context: PromptContext, *, calibration: Calibration, judge_weight: float, embed: Embed | None, checker: bool
) -> CriticInputs:
    await prefetch(embed, context.answer, context.passages, context.question)  # batched with other conversations
    return await asyncio.to_thread(
        critic_inputs, context, calibration=calibration, judge_weight=judge_weight, embed=embed, checker=checker
    )


async def _add_checker_if_decisive(context: PromptContext, inputs: CriticInputs) -> None:
    """Run the faithfulness checker only if the task's verdict differs with its signals at their two ends.

    The rules of the shipped tasks are monotone in the calibrated probability (a higher one never turns an
    acceptance into a rejection), and `checker_bounds` gives the ends of that probability, so the two
    verdicts bound every score in between."""
    outcomes = {
        (verdict.accepted, verdict.rejection)
        for verdict in (
            context.task.decide(dataclasses.replace(inputs, signals={**inputs.signals, **bound}))
            for bound in checker_bounds(inputs.calibration.weights)
        )
    }
    if len(outcomes) == 1:
        inputs.signals[CHECKER_SKIPPED] = 1.0
        return
    inputs.signals.update(
        await asyncio.to_thread(faithfulness_signal, context.answer, context.passages, context.question)
    )
