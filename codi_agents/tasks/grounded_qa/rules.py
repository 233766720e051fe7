"""The acceptance rules of grounded conversations: cheap signals and the LLM judge combined into a verdict.

The combination is explicit. For an assistant turn that is not a closing:

    p_signals = sigmoid(intercept + sum_i weight_i * signal_i)     (calibration.toml, fitted on labels)
    p_judge   = judge.score, capped at `judge_rejected_cap` (0.2) when the judge finds the reply ungrounded
                or unfaithful
    score     = w * p_judge + (1 - w) * p_signals

`w` is the judge's weight. It depends on the critic's model: `judge_weight_embedded` when the
critic is the embedded SmolLM2-135M (0 in the shipped calibration, so the judge is not even
called: on 40 held-out BEGIN items it produced parseable output for 14, its verdicts did not
follow the labels, and balanced accuracy fell from 0.875 with signals only to 0.825 at w = 0.2
and 0.5 at w >= 0.5, at tens of seconds per turn), `judge_weight_remote` when the critic is a
configured endpoint or a given chat model (0.75: a strong judge leads), or `Settings.judge_weight`
when set (`--judge-weight` in `codi eval-critic`).

Who decides:
- `w >= judge_leads_from` (0.5; the judge leads): the judge's booleans decide grounded, faithful, answers-question
  and whether the passages hold the answer; the score must still reach the threshold.
- below it (signals lead): grounded and faithful mean `p_signals >= threshold`; a judge with a
  small weight only moves the score. Whether the passages hold the answer comes from the
  question's coverage by and similarity to the passages (`Calibration.passages_answer`).

Vetoes, in order (the first that applies names the rejection): the reply echoes an instruction
injected into a passage (`follows_injection`, also when a leading judge says it obeys one); it repeats an
earlier reply of the conversation nearly word for word (`does_not_answer`: degenerate repetition, which a small
model produces and a student would learn); it
abstains although the passages hold the answer (`wrong_abstention`); on an unanswerable link it
answers although the passages lack the answer (`missed_abstention`); it claims personal
experiences or opinions (`unfaithful`: no passage can support them); when signals lead, it states
a number found in no passage (`unfaithful`: on labelled data every such reply was unfaithful, too
few to earn the weight in the fit); it is not grounded (`not_grounded`, or `unfaithful` when it
also brings new numbers, names or personal claims); it does not address the question
(`does_not_answer`); its score is below the threshold (`low_score`). An abstention makes no
claims, so it passes the grounding checks and is judged on answerability alone.

Closing replies are judged by rule: brief, no new numbers or names, no injected payload, no repeat. A user turn
that repeats an earlier message of the conversation is out of role, so it is written again.
Every signal, both probabilities, the judge's output and the rule that decided are kept in the
verdict (`signals`, `judge`, `decided_by`), so any kept or rejected turn can be audited.
"""

from __future__ import annotations

from typing import Any

from codi_agents._record import RejectionCategory, UserCheck, Verdict
from codi_agents.critic._inputs import CriticInputs
from codi_agents.critic._text import repeats
from codi_agents.tasks._base import PromptContext
from codi_agents.tasks.grounded_qa.prompts import EXPECTATIONS

MAX_CLOSING_WORDS = 60
MIN_ANSWER_WORDS = 1
"""When signals decide, a reply with fewer content words than this ("Sure!", "OK.") does not answer.

Lexical overlap with the question is no test of answering (a grounded "He was a mathematician."
shares no word with "Who was he?"), so without a judge only empty replies are caught."""
MAX_STATEMENT_WORDS = 25
"""A user turn that asks nothing and runs longer than this is explaining, which is the assistant's job."""
MAX_ELLIPTICAL_WORDS = 8
"""An elliptical follow-up leaves words out: at most this many words."""
MAX_TOPIC_SHIFT_OVERLAP = 0.5
"""A topic shift shares at most this share of its content words with the last exchange."""
INVENTION_SIGNALS = ("novel_numbers", "novel_names", "personal_claims")
REPEATED_REPLY = "the reply repeats an earlier reply of the conversation nearly word for word"


def expectation(context: PromptContext) -> str:
    """The judge's expectation for this link: answer from the passages, abstain, or close briefly."""
    return EXPECTATIONS[context.link.kind]


def grounded_decision(inputs: CriticInputs) -> Verdict:
    """The verdict on one assistant turn of a grounded conversation (see the module docstring)."""
    if inputs.link.kind == "closing":
        return _closing_verdict(inputs)
    signals = inputs.signals
    calibration = inputs.calibration
    judge = _judge_fields(inputs)
    weight = inputs.judge_weight if judge else 0.0
    judge_leads = calibration.judge_leads(weight)
    abstained = bool(signals.get("abstains")) or bool(judge_leads and judge.get("abstained"))

    signal_p = 1.0 if abstained else calibration.probability(signals)
    judge_p = _judge_probability(judge, calibration.judge_rejected_cap) if judge else signal_p
    score = weight * judge_p + (1 - weight) * signal_p
    passes = signal_p >= calibration.threshold
    grounded = bool(judge["grounded"]) if judge_leads else passes
    faithful = bool(judge["faithful"]) if judge_leads else passes
    if abstained:
        grounded = faithful = True
    passages_answer = _passages_answer(inputs, judge, judge_leads)
    answers = (
        bool(judge.get("answers_question", True))
        if judge_leads
        else abstained or signals.get("answer_words", 0.0) >= MIN_ANSWER_WORDS
    )
    invents = any(signals.get(name, 0.0) > 0 for name in INVENTION_SIGNALS)

    rejection: RejectionCategory | None = None
    reason = ""
    if signals.get("injection_echo") or (judge_leads and judge.get("follows_instructions_in_passages")):
        rejection, reason = "follows_injection", "the reply follows an instruction injected into a passage"
    elif _repeats_earlier_reply(inputs):
        rejection, reason = "does_not_answer", REPEATED_REPLY
    elif abstained and passages_answer:
        rejection, reason = "wrong_abstention", "the reply abstains although the passages hold the answer"
    elif not abstained and inputs.link.kind == "unanswerable" and passages_answer is False:
        rejection, reason = (
            "missed_abstention",
            "the passages do not answer this, yet the reply answers instead of abstaining",
        )
    elif signals.get("personal_claims", 0.0) > 0 and not abstained:
        rejection, reason = (
            "unfaithful",
            "the reply claims personal experiences or opinions, which no passage can support",
        )
    elif signals.get("novel_numbers", 0.0) > 0 and not abstained and not judge_leads:
        rejection, reason = "unfaithful", "the reply states numbers found in no passage" + _evidence(signals)
    elif not faithful and (judge_leads or invents):
        rejection, reason = "unfaithful", "the reply contradicts the passages or invents facts" + _evidence(signals)
    elif not grounded or not faithful:
        rejection, reason = "not_grounded", "claims in the reply are not supported by the passages" + _evidence(signals)
    elif not answers:
        rejection, reason = "does_not_answer", "the reply does not address the question"
    elif score < calibration.threshold:
        rejection, reason = (
            "low_score",
            f"combined score {score:.2f} is below the threshold {calibration.threshold:.2f}",
        )

    judge_reasons = str(judge.get("reasons", "")).strip()
    reasons = "; ".join(part for part in (reason, judge_reasons) if part) or "supported by the passages"
    audit = {"signal_probability": round(signal_p, 4), "judge_weight": round(weight, 4)}
    if judge:
        audit["judge_probability"] = round(judge_p, 4)
    if passages_answer is not None:
        audit["passages_answer"] = 1.0 if passages_answer else 0.0
    leader = "judge leads" if judge_leads else "signals lead" if judge else "signals only"
    return Verdict(
        reasons=reasons,
        grounded=grounded,
        faithful=faithful,
        answers_question=answers,
        abstained=abstained,
        score=round(min(max(score, 0.0), 1.0), 4),
        accepted=rejection is None,
        rejection=rejection,
        signals={**signals, **audit},
        judge=judge or None,
        decided_by=f"calibrated:{calibration.version}:judge_weight={weight:.2f}:{leader}:{rejection or 'accepted'}",
    )


def grounded_user_check(inputs: CriticInputs) -> UserCheck:
    """Did the user turn realise its planned link, and stay in role?"""
    cues = inputs.user_signals
    judge = _judge_fields(inputs)
    judge_leads = bool(judge) and inputs.calibration.judge_leads(inputs.judge_weight)
    lectures = inputs.link.kind != "closing" and not cues.get("asks") and cues.get("words", 0) > MAX_STATEMENT_WORDS
    repeated = repeats(inputs.question, [turn.content for turn in inputs.history])
    in_role = not (cues.get("assistant_speak") or cues.get("answers_itself") or lectures or repeated)
    if judge_leads and judge.get("user_in_role") is False:
        in_role = False
    realised, why = _link_realised(inputs, cues, judge, judge_leads)
    if in_role:
        reasons = why
    elif repeated:
        reasons = "the user message repeats an earlier message of the conversation"
    elif lectures:
        reasons = "the user message explains instead of asking"
    elif judge_leads and judge.get("user_in_role") is False:
        reasons = "the judge finds the user message out of role"
    else:
        reasons = "the user message reads like an assistant's answer or answers itself"
    return UserCheck(reasons=reasons, link_realised=realised, in_role=in_role, signals=dict(cues))


def _link_realised(
    inputs: CriticInputs, cues: dict[str, float], judge: dict[str, Any], judge_leads: bool
) -> tuple[bool, str]:
    phenomena = set(inputs.link.phenomena)
    follows = bool(cues.get("has_history"))
    checks: list[tuple[bool, str]] = []
    if inputs.link.kind == "closing":
        checks.append((bool(cues.get("closing_words")) or not cues.get("asks"), "closes without a new question"))
    elif inputs.link.kind == "unanswerable":
        answerable = _passages_answer(inputs, judge, judge_leads)
        checks.append((bool(cues.get("asks")), "asks a question"))
        checks.append((answerable is not True, "asks something the passages do not answer"))
    else:
        checks.append((bool(cues.get("asks")), "asks a question"))
    if "coreference" in phenomena:
        checks.append((bool(cues.get("has_pronoun")) and follows, "refers back to an earlier turn with a pronoun"))
    if "ellipsis" in phenomena:
        checks.append((cues.get("words", 99) <= MAX_ELLIPTICAL_WORDS and follows, "is elliptical (a few words)"))
    if "polar question" in phenomena:
        checks.append((bool(cues.get("polar")), "is a yes/no question"))
    if "explanation" in phenomena:
        checks.append((bool(cues.get("why_how")), "asks why or how"))
    if "topic shift" in phenomena and follows:
        checks.append((cues.get("history_overlap", 0.0) <= MAX_TOPIC_SHIFT_OVERLAP, "moves to a new topic"))
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
    rejection: RejectionCategory | None = None
    reasons = "closing reply: brief and without new facts"
    if echo:
        rejection, reasons = "follows_injection", "closing reply rejected: follows_injection"
    elif _repeats_earlier_reply(inputs):
        rejection, reasons = "does_not_answer", f"closing reply rejected: {REPEATED_REPLY}"
    elif invents:
        rejection, reasons = "unfaithful", "closing reply rejected: unfaithful"
    elif too_long:
        rejection, reasons = "low_score", "closing reply rejected: low_score"
    return Verdict(
        reasons=reasons,
        grounded=not invents,
        faithful=not invents and not echo,
        answers_question=True,
        score=0.0 if rejection else 1.0,
        accepted=rejection is None,
        rejection=rejection,
        signals=dict(signals),
        decided_by="closing-rule",
    )


def _repeats_earlier_reply(inputs: CriticInputs) -> bool:
    return repeats(inputs.answer, [turn.content for turn in inputs.history if turn.role == "assistant"])


def _judge_fields(inputs: CriticInputs) -> dict[str, Any]:
    return inputs.judgement.model_dump() if inputs.judgement is not None else {}


def _judge_probability(judge: dict[str, Any], rejected_cap: float) -> float:
    score = float(judge.get("score", 0.5))
    if not judge.get("grounded", True) or not judge.get("faithful", True):
        score = min(score, rejected_cap)
    return score


def _passages_answer(inputs: CriticInputs, judge: dict[str, Any], judge_leads: bool) -> bool | None:
    """Whether the passages hold the answer: the judge's word when it leads, else the calibrated cues."""
    if judge_leads and "passages_answer_question" in judge:
        return bool(judge["passages_answer_question"])
    return inputs.calibration.passages_answer(inputs.signals)


def _evidence(signals: dict[str, float]) -> str:
    found = [
        f"{int(signals[name])} {label}"
        for name, label in (
            ("novel_numbers", "number(s) found in no passage"),
            ("novel_names", "name(s) found in no passage"),
            ("personal_claims", "personal claim(s)"),
        )
        if signals.get(name)
    ]
    share = signals.get("unsupported_share")
    if share:
        found.append(f"{share:.0%} of its content words in no passage")
    return f" ({'; '.join(found)})" if found else ""
