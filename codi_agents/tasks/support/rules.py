"""The acceptance rules of support conversations, built on the grounded rules.

Per reply: the grounded verdict (`grounded_decision`), then two support vetoes: contact details the
help page does not give (phone numbers, e-mails, links) are invented; and a reply to a link that
asks for a step (phenomenon `step request`) must give one the customer can act on. Whether a reply
is actionable is the judge's word when it leads, else a cheap cue (imperatives, "you need to", a
numbered step) or an honest "the page does not cover this".

Per user turn: the grounded check, plus the support phenomena (`failure report`, `detail
provision`, `confirmation`).

Per conversation: success means the goal was reached with grounded steps: at least one accepted,
actionable, non-abstaining reply; the customer confirmed the outcome (a link with phenomenon
`resolution` was completed, when the flow has one); and, when the judge led, it found the goal
resolved at some point.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

from codi_agents._record import RejectionCategory, Turn, UserCheck, Verdict
from codi_agents.critic._inputs import CriticInputs
from codi_agents.inputs._passages import Passage
from codi_agents.tasks._base import ConversationCheck, ConversationDraft, PromptContext
from codi_agents.tasks.grounded_qa import grounded_decision, grounded_user_check
from codi_agents.tasks.support.prompts import EXPECTATIONS

STEP_REQUEST = "step request"
"""Phenomenon of links whose reply must give the customer a step."""
RESOLUTION = "resolution"
"""Phenomenon of the link where the customer confirms the outcome."""
GOAL_PROGRESS = {"none": 0.0, "partial": 0.5, "resolved": 1.0}

STEP_CUE = re.compile(
    r"\b(step \d|first|then|next|after that|finally|you (can|could|need to|must|should|will need|have to|may)"
    r"|(please )?(fill (in|out)|complete|submit|send|mail|bring|visit|go to|call|apply|sign|log ?in|select|choose"
    r"|contact|return|remove|pay|request|print|upload|enter|click|use|take|ask|check|make sure))\b",
    re.IGNORECASE,
)
FAILURE = re.compile(
    r"\b(tried|did(n't| not)|does(n't| not)|do(n't| not)|won't|will not|can't|cannot|could(n't| not)|stuck|error"
    r"|fail(ed|s)?|rejected|refused|returned|problem|issue|not working|no luck|wrong)\b",
    re.IGNORECASE,
)
FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|my|me|we|our|us)\b", re.IGNORECASE)
CONFIRMATION = re.compile(
    r"\b(right|correct|confirm|so i|so that's|that's it|is that (all|it|everything)|will that|does that)\b"
    r"|^\s*(so|ok|okay)\b",
    re.IGNORECASE,
)
PHONE = re.compile(r"(?<!\d)(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)|\b1-8\d\d-[A-Z0-9-]{7,}\b")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
LINK = re.compile(r"\bhttps?://[^\s)>\]]+|\bwww\.[^\s)>\]]+", re.IGNORECASE)


def expectation(context: PromptContext) -> str:
    """The judge's expectation for this link, in support terms."""
    return EXPECTATIONS[context.link.kind]


def topic(context: PromptContext) -> str:
    """What the customer's problem is about: the help page's title."""
    return context.document.title or context.document.id


def invented_contact_details(answer: str, passages: Sequence[Passage]) -> list[str]:
    """Phone numbers, e-mails and links in `answer` that no passage contains."""
    evidence = "\n".join(passage.text for passage in passages)
    evidence_lower = evidence.lower()
    evidence_digits = re.sub(r"\D", "", evidence)
    invented = []
    for phone in PHONE.findall(answer):
        digits = re.sub(r"\D", "", phone)
        if phone not in evidence and (not digits or digits[-10:] not in evidence_digits):
            invented.append(phone)
    for found in [*EMAIL.findall(answer), *LINK.findall(answer)]:
        if found.rstrip(".,;").lower() not in evidence_lower:
            invented.append(found.rstrip(".,;"))
    return invented


def support_decision(inputs: CriticInputs) -> Verdict:
    """The verdict on one support reply: the grounded verdict plus the support vetoes."""
    verdict = grounded_decision(inputs)
    judge = inputs.judgement.model_dump() if inputs.judgement is not None else {}
    leads = bool(judge) and inputs.calibration.judge_leads(inputs.judge_weight)
    invented = invented_contact_details(inputs.answer, inputs.passages)
    if leads and judge.get("invents_contact_details") and not invented:
        invented = ["(found by the judge)"]
    cue = bool(STEP_CUE.search(inputs.answer))
    if leads and "step_is_actionable" in judge:
        actionable = bool(judge["step_is_actionable"])
    else:
        actionable = cue or verdict.abstained
    signals = {
        **verdict.signals,
        "step_cue": float(cue),
        "actionable": float(actionable),
        "invented_contacts": float(len(invented)),
    }
    if leads and judge.get("goal_progress") in GOAL_PROGRESS:
        signals["goal_progress"] = GOAL_PROGRESS[judge["goal_progress"]]
    rejection: RejectionCategory | None = verdict.rejection
    reasons = verdict.reasons
    if verdict.accepted and invented:
        rejection = "unfaithful"
        reasons = f"the reply gives contact details the help page does not give: {', '.join(invented)}; {reasons}"
    elif verdict.accepted and STEP_REQUEST in inputs.link.phenomena and not actionable:
        rejection = "does_not_answer"
        reasons = f"the reply gives the customer no step they can act on; {reasons}"
    accepted = rejection is None
    return verdict.model_copy(
        update={
            "accepted": accepted,
            "rejection": rejection,
            "reasons": reasons,
            "faithful": verdict.faithful and not invented,
            "signals": signals,
            "decided_by": f"support:{verdict.decided_by}",
        }
    )


def support_user_check(inputs: CriticInputs) -> UserCheck:
    """The grounded check of the customer's turn, plus the support phenomena it should show."""
    check = grounded_user_check(inputs)
    if not check.in_role:
        return check
    message = inputs.question
    phenomena = set(inputs.link.phenomena)
    checks: list[tuple[bool, str]] = []
    if "failure report" in phenomena:
        checks.append((bool(FAILURE.search(message)), "say that a step did not work"))
    if "detail provision" in phenomena:
        checks.append((bool(FIRST_PERSON.search(message)), "give a detail of their own situation"))
    if "confirmation" in phenomena:
        polar = bool(check.signals.get("polar"))
        checks.append((bool(CONFIRMATION.search(message)) or polar, "ask the agent to confirm"))
    failed = [what for ok, what in checks if not ok]
    if not failed:
        extra = "; ".join(what for _, what in checks)
        return check.model_copy(update={"reasons": f"{check.reasons}; {extra}" if extra else check.reasons})
    if check.link_realised:
        reasons = "link not realised: it should " + "; ".join(failed)
    else:
        reasons = f"{check.reasons}; {'; '.join(failed)}"
    return check.model_copy(update={"link_realised": False, "reasons": reasons})


def support_conversation_check(draft: ConversationDraft) -> ConversationCheck:
    """Success: the customer's goal was reached with grounded steps."""
    exchanges = _exchanges(draft.turns)
    steps = [
        reply
        for link, reply in exchanges
        if reply.verdict is not None
        and reply.verdict.accepted
        and not reply.verdict.abstained
        and (link not in draft.flow.links or draft.flow.links[link].kind != "closing")
        and reply.verdict.signals.get("actionable", 0.0) > 0
    ]
    if not steps:
        return ConversationCheck(
            accepted=False, reason="goal not reached: the agent never gave a grounded step the customer could act on"
        )
    resolution_links = {name for name, link in draft.flow.links.items() if RESOLUTION in link.phenomena}
    if resolution_links and not resolution_links & {link for link, _ in exchanges}:
        return ConversationCheck(
            accepted=False,
            reason="goal not reached: the customer never confirmed the outcome "
            f"(no completed {' or '.join(sorted(resolution_links))} exchange)",
        )
    progress = [
        reply.verdict.signals["goal_progress"]
        for _, reply in exchanges
        if reply.verdict is not None and "goal_progress" in reply.verdict.signals
    ]
    if progress and max(progress) < GOAL_PROGRESS["resolved"]:
        return ConversationCheck(accepted=False, reason="goal not reached: the judge never found the goal resolved")
    return ConversationCheck(accepted=True, reason=f"goal reached with {len(steps)} grounded step(s)")


def _exchanges(turns: Sequence[Turn]) -> list[tuple[str, Turn]]:
    """(link, assistant reply) pairs of the committed turns."""
    pairs = []
    for before, turn in pairwise(turns):
        if before.role == "user" and turn.role == "assistant":
            pairs.append((before.link or "", turn))
    return pairs
