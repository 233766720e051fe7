"""The graph's nodes: plan, user, retrieve, assistant, critic, commit, finish (the routers are in `_routers.py`).

Nodes read the run context (`Runtime[SimulationContext]`) for models, index and limits, and
return partial state updates. Each role gets a fresh prompt context holding what it may see.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from codi_agents._record import Failure, RejectedAttempt, Turn
from codi_agents._sentences import sentences
from codi_agents.critic._assess import assess_exchange
from codi_agents.errors import RequestRejectedError
from codi_agents.inputs._passages import Passage
from codi_agents.retrieval._queries import contextual_queries, describe_queries
from codi_agents.simulation._context import SimulationContext
from codi_agents.simulation._generation import generate_text
from codi_agents.simulation._outputs import clean_answer, clean_user_message
from codi_agents.simulation._prompting import (
    DEFAULT_READER_VIEW_CHARS,
    SMALL_MODEL_READER_VIEW_CHARS,
    PromptBudget,
    assistant_messages,
    document_view,
    user_messages,
)
from codi_agents.simulation._state import SimulationState
from codi_agents.tasks._base import ConversationCheck, ConversationDraft, PromptContext

Update = dict[str, Any]


def plan(state: SimulationState) -> Update:
    """Sample the conversation's path through the flow graph with the run's seed."""
    return {"path": state["flow"].sample_path(state["seed"]), "step": 0, "outcome": "running", "user_attempts": 0}


async def user(state: SimulationState, runtime: Runtime[SimulationContext]) -> Update:
    """The user simulator writes the next user message for the current link."""
    ctx = runtime.context
    used = [pid for turn in state.get("turns", []) for pid in turn.passage_ids]
    view = document_view(
        state["passages"],
        state["document"],
        mode=ctx.settings.user_mode,
        link=state["flow"].links[state["path"][state["step"]]],
        used_ids=used,
        seed=state["seed"] * 1000 + state["step"],
        budget_chars=SMALL_MODEL_READER_VIEW_CHARS if "user" in ctx.embedded_roles else DEFAULT_READER_VIEW_CHARS,
    )
    context = _prompt_context(state, ctx, document_view=view)
    update: Update = {
        "user_attempts": state.get("user_attempts", 0) + 1,
        "user_draft": "",
        "answer_draft": "",
        "answer_attempts": 0,
        "rejected_attempts": [],
        "verdict": None,
        "user_check": None,
    }
    try:
        text, usage, failures = await generate_text(
            ctx.models["user"],
            user_messages(context),
            clean_user_message,
            ctx,
            "user",
            state["step"],
            structured=ctx.structured_user_turns(),
        )
    except RequestRejectedError as exc:
        return update | _rejected("request_rejected", str(exc), stage="user", step=state["step"])
    update |= {"usage": {"user": usage}, "failures": failures}
    if text is None:
        return update | _rejected(
            "generation_failed", "the user simulator produced no usable message", failures=failures
        )
    return update | {"user_draft": text}


async def retrieve(state: SimulationState, runtime: Runtime[SimulationContext]) -> Update:
    """Find the passages of this document for the user's message, read in the context of the conversation."""
    ctx = runtime.context
    queries = contextual_queries(state["user_draft"], state.get("turns", []), sentences)
    found = await ctx.index.asearch(state["document"], queries, ctx.settings.top_k)
    return {"retrieved": found, "retrieval_query": describe_queries(queries)}


async def assistant(state: SimulationState, runtime: Runtime[SimulationContext]) -> Update:
    """The grounded assistant answers from the retrieved passages only (or says they do not say)."""
    ctx = runtime.context
    model = ctx.models["assistant"]
    context = _prompt_context(state, ctx, passages=state["retrieved"], question=state["user_draft"])
    rejected = state.get("rejected_attempts", [])
    feedback = rejected[-1].verdict.reasons if rejected else ""
    messages = assistant_messages(context, PromptBudget(model.context_window, model.max_tokens), feedback)
    update: Update = {
        "answer_attempts": state.get("answer_attempts", 0) + 1,
        "passages_used": {passage.id: passage for passage in state["retrieved"]},
        "verdict": None,
    }
    try:
        text, usage, failures = await generate_text(model, messages, clean_answer, ctx, "assistant", state["step"])
    except RequestRejectedError as exc:
        return update | _rejected("request_rejected", str(exc), stage="assistant", step=state["step"])
    update |= {"usage": {"assistant": usage}, "failures": failures}
    if text is None:
        return update | _rejected("generation_failed", "the assistant produced no usable reply", failures=failures)
    return update | {"answer_draft": text}


async def critic(state: SimulationState, runtime: Runtime[SimulationContext]) -> Update:
    """Judge the reply (grounding, faithfulness, answering) and the user turn (link realised, in role)."""
    ctx = runtime.context
    context = _prompt_context(
        state, ctx, passages=state["retrieved"], question=state["user_draft"], answer=state["answer_draft"]
    )
    try:
        assessment = await assess_exchange(
            context,
            critic=ctx.models["critic"],
            calibration=ctx.calibration,
            judge_weight=ctx.judge_weight,
            embed=ctx.embed,
            parse_retries=ctx.settings.max_parse_retries,
        )
    except RequestRejectedError as exc:
        return _rejected("request_rejected", str(exc), stage="critic", step=state["step"])
    update: Update = {
        "verdict": assessment.verdict,
        "user_check": assessment.user_check,
        "usage": {"critic": assessment.usage},
        "failures": [assessment.failure] if assessment.failure else [],
    }
    if not assessment.verdict.accepted:
        attempt = RejectedAttempt(
            content=state["answer_draft"],
            passage_ids=[passage.id for passage in state["retrieved"]],
            verdict=assessment.verdict,
        )
        update["rejected_attempts"] = [*state.get("rejected_attempts", []), attempt]
    return update


def commit(state: SimulationState) -> Update:
    """Keep the accepted exchange and move to the next link."""
    return {
        "turns": _exchange_turns(state, include_answer=True),
        "step": state["step"] + 1,
        "user_draft": "",
        "answer_draft": "",
        "verdict": None,
        "user_check": None,
        "user_attempts": 0,
        "answer_attempts": 0,
        "rejected_attempts": [],
    }


def finish(state: SimulationState, runtime: Runtime[SimulationContext]) -> Update:
    """Decide the outcome: accepted when every exchange passed and the task's conversation rule agrees."""
    if state["step"] >= len(state["path"]) and state.get("outcome") == "running":
        outcome = _conversation_rule(state, runtime.context, truncated=False)
        if not outcome.accepted:
            return {"outcome": "rejected", "rejection": outcome.rejection, "rejection_reason": outcome.reason}
        return {"outcome": "accepted", "rejection": None, "rejection_reason": None, "truncated": False}
    rejection, reason = state.get("rejection"), state.get("rejection_reason")
    check = state.get("user_check")
    verdict = state.get("verdict")
    if rejection is None and check is not None and not check.in_role:
        rejection, reason = "user_out_of_role", f"user turn out of role: {check.reasons}"
    elif rejection is None and verdict is not None and not verdict.accepted:
        rejection, reason = verdict.rejection, verdict.reasons
    if rejection is None:
        raise RuntimeError(f"finish reached at step {state['step']} of {len(state['path'])} with no reason to stop")
    committed = sum(1 for turn in state.get("turns", []) if turn.role == "assistant")
    if runtime.context.settings.acceptance == "accepted_prefix" and committed >= state["flow"].min_turns:
        prefix = _conversation_rule(state, runtime.context, truncated=True)
        if prefix.accepted:
            return {"outcome": "accepted", "truncated": True, "rejection": None, "rejection_reason": None}
        reason = f"{reason}; the accepted prefix was not kept: {prefix.reason}"
    return {
        "outcome": "rejected",
        "rejection": rejection,
        "rejection_reason": reason,
        "turns": _exchange_turns(state, include_answer=bool(state.get("answer_draft")))
        if state.get("user_draft")
        else [],
    }


def _conversation_rule(state: SimulationState, ctx: SimulationContext, *, truncated: bool) -> ConversationCheck:
    """The task's conversation-level rule over the committed turns; a task without one accepts."""
    rule = ctx.task.accept_conversation
    if rule is None:
        return ConversationCheck(accepted=True)
    draft = ConversationDraft(
        document=state["document"],
        persona=state["persona"],
        flow=state["flow"],
        path=list(state["path"]),
        turns=list(state.get("turns", [])),
        passages=dict(state.get("passages_used", {})),
        truncated=truncated,
    )
    return rule(draft)


def _prompt_context(
    state: SimulationState,
    ctx: SimulationContext,
    *,
    passages: list[Passage] | None = None,
    question: str = "",
    answer: str = "",
    document_view: str = "",
) -> PromptContext:
    """A fresh prompt context at the current link, with what this role may see (its own copy: never mutated)."""
    link_name = state["path"][state["step"]]
    return PromptContext(
        task=ctx.task,
        document=state["document"],
        persona=state["persona"],
        link_name=link_name,
        link=state["flow"].links[link_name],
        history=list(state.get("turns", [])),
        turn_number=state["step"],
        passages=list(passages or []),
        question=question,
        answer=answer,
        document_view=document_view,
    )


def _rejected(
    category: str, reason: str, *, stage: str = "", step: int = 0, failures: list[Failure] | None = None
) -> Update:
    update: Update = {"outcome": "rejected", "rejection": category, "rejection_reason": reason}
    if stage:
        update["failures"] = [Failure(stage=stage, error=reason, turn=step)]
    return update


def _exchange_turns(state: SimulationState, *, include_answer: bool) -> list[Turn]:
    link = state["path"][state["step"]]
    turns = [
        Turn(
            role="user",
            content=state["user_draft"],
            link=link,
            check=state.get("user_check"),
            attempts=state.get("user_attempts", 1) or 1,
        )
    ]
    if include_answer and state.get("answer_draft"):
        verdict = state.get("verdict")
        rejected = list(state.get("rejected_attempts", []))
        if verdict is not None and not verdict.accepted and rejected and rejected[-1].content == state["answer_draft"]:
            rejected = rejected[:-1]
        turns.append(
            Turn(
                role="assistant",
                content=state["answer_draft"],
                retrieval_query=state.get("retrieval_query"),
                passage_ids=[passage.id for passage in state.get("retrieved", [])],
                verdict=verdict,
                attempts=state.get("answer_attempts", 1) or 1,
                rejected_attempts=rejected,
            )
        )
    return turns


__all__ = [
    "assistant",
    "commit",
    "critic",
    "finish",
    "plan",
    "retrieve",
    "user",
]
