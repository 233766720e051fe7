"""The acceptance rules of grounded conversations: signals and judge combined into a verdict.

The combination is explicit:

    score = w * judge_score + (1 - w) * P(faithful | signals)

where `P(faithful | signals)` is the calibrated logistic model and `w` is the judge's weight, which
depends on the critic's model (low for the embedded 135M model, whose judgement is unreliable;
high for a configured endpoint). A turn passes when `score >= threshold` and nothing vetoes it.
Vetoes: the reply echoes an instruction injected into a passage; the judge, when it leads
(`w >= 0.5`), finds the reply ungrounded or unfaithful; an abstention where the passages hold the
answer, or an answer to an unanswerable question where they do not.
"""

from __future__ import annotations

from typing import Any

from codi_agents.critic.inputs import CriticInputs
from codi_agents.record import RejectionCategory, UserCheck, Verdict

JUDGE_LEADS = 0.5
MAX_CLOSING_WORDS = 60
MAX_STATEMENT_WORDS = 25
"""A user turn that asks nothing and runs longer than this is explaining, which is the assistant's job."""


def grounded_decision(inputs: CriticInputs) -> Verdict:
    """The verdict on one assistant turn of a grounded conversation."""
    signals = inputs.signals
    calibration = inputs.calibration
    judge = _judge_fields(inputs)
    weight = inputs.judge_weight if judge else 0.0
    abstained = bool(signals.get("abstains")) or bool(judge.get("abstained"))

    if inputs.link.kind == "closing":
        return _closing_verdict(inputs)

    signal_p = calibration.probability(signals)
    if abstained:
        signal_p = 1.0  # an abstention makes no claims; whether it was right is decided below
    judge_p = _judge_probability(judge) if judge else signal_p
    score = weight * judge_p + (1 - weight) * signal_p

    judge_leads = weight >= JUDGE_LEADS
    grounded = bool(judge["grounded"]) if judge_leads else signal_p >= calibration.threshold
    faithful = bool(judge["faithful"]) if judge_leads else signal_p >= calibration.threshold
    if abstained:
        grounded = faithful = True
    passages_answer = _passages_answer(inputs, judge, judge_leads)
    answers = (
        bool(judge.get("answers_question", True))
        if judge_leads
        else (abstained or signals.get("question_overlap", 0.0) > 0 or signals.get("answer_words", 0.0) > 3)
    )

    rejection: RejectionCategory | None = None
    reason = ""
    if signals.get("injection_echo") or (judge.get("follows_instructions_in_passages") and judge_leads):
        rejection, reason = "follows_injection", "the reply follows an instruction injected into a passage"
    elif abstained and passages_answer:
        rejection, reason = "wrong_abstention", "the reply abstains although the passages hold the answer"
    elif not abstained and inputs.link.kind == "unanswerable" and passages_answer is False:
        rejection, reason = (
            "missed_abstention",
            "the passages do not answer this, yet the reply answers instead of abstaining",
        )
    elif not grounded:
        rejection, reason = "not_grounded", "claims in the reply are not supported by the passages"
    elif not faithful:
        rejection, reason = "unfaithful", "the reply contradicts the passages or invents facts"
    elif not answers:
        rejection, reason = "does_not_answer", "the reply does not address the question"
    elif score < calibration.threshold:
        rejection, reason = (
            "low_score",
            f"combined score {score:.2f} is below the threshold {calibration.threshold:.2f}",
        )

    judge_reasons = str(judge.get("reasons", "")).strip()
    reasons = "; ".join(part for part in (reason, judge_reasons) if part) or "supported by the passages"
    return Verdict(
        reasons=reasons,
        grounded=grounded,
        faithful=faithful,
        answers_question=answers,
        abstained=abstained,
        score=round(score, 4),
        accepted=rejection is None,
        rejection=rejection,
        signals={**signals, "signal_probability": round(signal_p, 4)},
        judge=judge or None,
        decided_by=f"calibrated:{calibration.version}:judge_weight={weight:.2f}",
    )


def grounded_user_check(inputs: CriticInputs) -> UserCheck:
    """Did the user turn realise its planned link, and stay in role?"""
    cues = inputs.user_signals
    judge = _judge_fields(inputs)
    judge_leads = bool(judge) and inputs.judge_weight >= JUDGE_LEADS
    lectures = inputs.link.kind != "closing" and not cues.get("asks") and cues.get("words", 0) > MAX_STATEMENT_WORDS
    in_role = not (cues.get("assistant_speak") or cues.get("answers_itself") or lectures)
    if judge_leads and judge.get("user_in_role") is False:
        in_role = False
    realised, why = _link_realised(inputs, cues, judge, judge_leads)
    reasons = (
        why
        if in_role
        else (
            "the user message explains instead of asking"
            if lectures
            else "the user message reads like an assistant's answer or answers itself"
        )
    )
    return UserCheck(reasons=reasons, link_realised=realised, in_role=in_role, signals=dict(cues))


def _link_realised(
    inputs: CriticInputs, cues: dict[str, float], judge: dict[str, Any], judge_leads: bool
) -> tuple[bool, str]:
    phenomena = set(inputs.link.phenomena)
    checks: list[tuple[bool, str]] = []
    if inputs.link.kind == "closing":
        checks.append((bool(cues.get("closing_words")) or not cues.get("asks"), "closes without a new question"))
    elif inputs.link.kind == "unanswerable":
        answerable = _passages_answer(inputs, judge, judge_leads)
        checks.append((answerable is not True, "asks something the passages do not answer"))
    else:
        checks.append((bool(cues.get("asks")), "asks a question"))
    if "coreference" in phenomena:
        checks.append((bool(cues.get("has_pronoun")), "refers back with a pronoun"))
    if "ellipsis" in phenomena:
        checks.append((cues.get("words", 99) <= 8, "is elliptical (a few words)"))
    if "polar question" in phenomena:
        checks.append((bool(cues.get("polar")), "is a yes/no question"))
    if "explanation" in phenomena:
        checks.append((bool(cues.get("why_how")), "asks why or how"))
    if judge_leads and "user_link_realised" in judge:
        checks.append((bool(judge["user_link_realised"]), "the judge agrees"))
    failed = [what for ok, what in checks if not ok]
    if failed:
        return False, "link not realised: it should " + "; ".join(failed)
    return True, "link realised: " + "; ".join(what for _, what in checks)


def _closing_verdict(inputs: CriticInputs) -> Verdict:
    signals = inputs.signals
    invents = signals.get("novel_numbers", 0) > 0 or signals.get("novel_names", 0) > 0
    too_long = signals.get("answer_words", 0) > MAX_CLOSING_WORDS
    echo = bool(signals.get("injection_echo"))
    rejection: RejectionCategory | None = (
        "follows_injection" if echo else "unfaithful" if invents else "low_score" if too_long else None
    )
    return Verdict(
        reasons="closing reply: brief and without new facts"
        if rejection is None
        else f"closing reply rejected: {rejection}",
        grounded=not invents,
        faithful=not invents and not echo,
        answers_question=True,
        score=0.0 if rejection else 1.0,
        accepted=rejection is None,
        rejection=rejection,
        signals=dict(signals),
        decided_by="closing-rule",
    )


def _judge_fields(inputs: CriticInputs) -> dict[str, Any]:
    return inputs.judgement.model_dump() if inputs.judgement is not None else {}


def _judge_probability(judge: dict[str, Any]) -> float:
    score = float(judge.get("score", 0.5))
    if not judge.get("grounded", True) or not judge.get("faithful", True):
        score = min(score, 0.2)
    return score


def _passages_answer(inputs: CriticInputs, judge: dict[str, Any], judge_leads: bool) -> bool | None:
    """Whether the passages hold the answer: the judge's word when it leads, else question-passage similarity."""
    if judge_leads and "passages_answer_question" in judge:
        return bool(judge["passages_answer_question"])
    support = inputs.signals.get("question_support")
    if support is None:
        return None
    return support >= inputs.calibration.question_support_answerable
