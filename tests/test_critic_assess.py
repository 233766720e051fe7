"""One critic pass: how the judge's weight decides who leads, and what the verdict keeps for auditing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from codi_agents import Settings
from codi_agents.config._settings import ROLES
from codi_agents.critic import Calibration, load_calibration
from codi_agents.critic._assess import CHECKER_SKIPPED, Assessment, assess_exchange, critic_inputs
from codi_agents.evaluation._items import item_context
from codi_agents.evaluation._labelled import LabelledItem
from codi_agents.inputs._flows import Link
from codi_agents.llm._models import build_role_models
from codi_agents.tasks import get_task
from codi_agents.testing import HashingEmbeddingFunction, ScriptedChatModel, approving_judgement

INVENTED = LabelledItem(
    id="x",
    knowledge="The library opens at 9 am on weekdays.",
    history=["When does the library open?"],
    response="It opens at 7 am every day and entry costs 45 dollars.",
    label="unfaithful",
)


def assess(
    judge_weight: float,
    reply: Any = approving_judgement,
    *,
    link: Link | None = None,
    calibration: Calibration | None = None,
    item: LabelledItem = INVENTED,
) -> tuple[Assessment, ScriptedChatModel]:
    chat = ScriptedChatModel(script=reply, model_name="judge")
    critic = build_role_models(Settings(), dict.fromkeys(ROLES, chat))["critic"]
    context = item_context(item, get_task("grounded_qa"))
    if link is not None:
        context = replace(context, link=link)
    assessment = asyncio.run(
        assess_exchange(
            context,
            critic=critic,
            calibration=calibration or load_calibration(),
            judge_weight=judge_weight,
            embed=HashingEmbeddingFunction(),
            parse_retries=1,
        )
    )
    return assessment, chat


def test_a_leading_judge_decides_and_its_output_is_kept() -> None:
    assessment, chat = assess(0.75)
    verdict = assessment.verdict
    assert len(chat.calls) == 1
    assert verdict.accepted and "judge leads" in verdict.decided_by
    assert verdict.judge is not None and verdict.judge["score"] == 0.95
    assert verdict.signals["judge_probability"] == 0.95
    assert verdict.score == pytest.approx(0.75 * 0.95 + 0.25 * verdict.signals["signal_probability"], abs=1e-3)
    assert assessment.usage.requests == 1


def test_a_judge_with_a_small_weight_cannot_overrule_the_signals() -> None:
    assessment, chat = assess(0.3)
    verdict = assessment.verdict
    assert len(chat.calls) == 1
    assert not verdict.accepted and verdict.rejection == "unfaithful"
    assert "signals lead" in verdict.decided_by
    assert verdict.signals["judge_weight"] == 0.3


def test_weight_zero_skips_the_judge() -> None:
    assessment, chat = assess(0.0)
    assert chat.calls == [] and assessment.verdict.judge is None
    assert "signals only" in assessment.verdict.decided_by


def test_a_leading_judge_that_sees_injected_instructions_obeyed_rejects_with_that_reason() -> None:
    def obeys(messages: Any) -> dict[str, Any]:
        return {**approving_judgement(messages), "follows_instructions_in_passages": True}

    verdict = assess(0.75, obeys)[0].verdict
    assert verdict.rejection == "follows_injection"
    assert "injected into a passage" in verdict.reasons


def test_an_unparseable_leading_judge_rejects_as_critic_failed_and_keeps_the_raw_output() -> None:
    assessment, chat = assess(0.75, lambda messages: "looks fine")
    assert len(chat.calls) == 2
    assert assessment.verdict.rejection == "critic_failed"
    assert assessment.failure is not None and "looks fine" in assessment.failure.raw_output


def test_the_calibration_says_who_leads_in_the_assessment_and_in_the_rules_alike() -> None:
    """A refit calibration that lets the judge lead only from 0.8 on: at 0.75 the signals decide everywhere."""
    late_judge = load_calibration().model_copy(update={"judge_leads_from": 0.8})
    unparseable, _ = assess(0.75, lambda messages: "looks fine", calibration=late_judge)
    assert unparseable.failure is not None  # the judge's failure is still recorded ...
    assert unparseable.verdict.rejection == "unfaithful"  # ... but the signals, not the judge, decide
    assert "signals" in unparseable.verdict.decided_by
    approving, _ = assess(0.75, calibration=late_judge)
    assert approving.verdict.rejection == "unfaithful" and "signals lead" in approving.verdict.decided_by
    # and the same weight under the shipped calibration (judge leads from 0.5) still lets the judge decide
    assert assess(0.75, lambda messages: "looks fine")[0].verdict.rejection == "critic_failed"


def test_closing_turns_are_judged_by_rule_without_the_judge() -> None:
    closing = Link(kind="closing", instruction="Say goodbye.")
    assessment, chat = assess(0.75, link=closing)
    assert chat.calls == []
    assert assessment.verdict.decided_by.startswith("closing-rule")
    assert not assessment.verdict.accepted  # new numbers in a closing reply


def judged_with_score(score: float, **fields: Any) -> Any:
    def judge(messages: Any) -> dict[str, Any]:
        return {**approving_judgement(messages), "score": score, **fields}

    return judge


def test_a_leading_judge_skips_the_checker_when_its_score_cannot_change_the_verdict() -> None:
    signals = assess(0.75)[0].verdict.signals  # judge score 0.95: accepted whatever the checker says
    assert CHECKER_SKIPPED in signals and "faithfulness" not in signals
    rejected = assess(0.75, judged_with_score(0.9, faithful=False))[0].verdict.signals
    assert CHECKER_SKIPPED in rejected and "faithfulness" not in rejected


SUPPORTED = LabelledItem(
    id="y",
    knowledge="The library opens at 9 am on weekdays.",
    history=["When does the library open?"],
    response="On weekdays the library opens at 9 am.",
    label="faithful",
)


def test_the_checker_runs_when_its_score_decides_and_not_when_a_rule_already_has() -> None:
    supported = assess(0.0, item=SUPPORTED)[0].verdict.signals  # signals lead, no veto: the checker decides
    assert "faithfulness" in supported and CHECKER_SKIPPED not in supported
    vetoed = assess(0.0)[0].verdict  # numbers found in no passage reject the reply whatever the checker says
    assert vetoed.rejection == "unfaithful" and CHECKER_SKIPPED in vetoed.signals
    closing = assess(0.0, link=Link(kind="closing", instruction="Say goodbye."), item=SUPPORTED)[0].verdict
    assert closing.decided_by == "closing-rule" and CHECKER_SKIPPED in closing.signals


@pytest.mark.parametrize(
    ("weight", "judge", "item"),
    [
        (0.75, judged_with_score(0.95), INVENTED),
        (0.75, judged_with_score(0.45), INVENTED),  # near the threshold: the signals' share decides
        (0.75, judged_with_score(0.2), INVENTED),
        (0.75, judged_with_score(0.9, faithful=False), SUPPORTED),
        (0.75, judged_with_score(0.9, answers_question=False), SUPPORTED),
        (0.3, judged_with_score(0.95), SUPPORTED),
        (0.0, None, SUPPORTED),
        (0.0, None, INVENTED),
    ],
)
def test_skipping_the_checker_never_changes_a_verdict(weight: float, judge: Any, item: LabelledItem) -> None:
    """The outcome with the checker run only when decisive equals the outcome with the checker always run."""
    assessment, _ = assess(weight, judge or approving_judgement, item=item)
    task = get_task("grounded_qa")
    full = critic_inputs(
        item_context(item, task),
        calibration=load_calibration(),
        judge_weight=weight,
        embed=HashingEmbeddingFunction(),
        checker=True,
    )
    if judge is not None:
        full.judgement = task.judge_schema.model_validate(judge([]))
    reference = task.decide(full)
    assert (assessment.verdict.accepted, assessment.verdict.rejection) == (reference.accepted, reference.rejection)
    if CHECKER_SKIPPED not in assessment.verdict.signals:
        assert assessment.verdict.signals["faithfulness"] == reference.signals["faithfulness"]
