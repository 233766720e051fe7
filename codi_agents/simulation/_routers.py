"""The graph's routers: after each node, the name of the next one.

Routers return `Literal` node names and raise on states that cannot happen. Every loop is bounded
by a counter in state against a named setting (`max_user_retries`, `max_assistant_retries`).
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from codi_agents.simulation._context import SimulationContext
from codi_agents.simulation._state import SimulationState


def after_user(state: SimulationState) -> Literal["retrieve", "finish"]:
    """Retrieve for the new message, or finish when no message could be generated."""
    return "finish" if state.get("outcome") == "rejected" else "retrieve"


def after_assistant(state: SimulationState) -> Literal["critic", "finish"]:
    """Judge the reply, or finish when no reply could be generated."""
    return "finish" if state.get("outcome") == "rejected" else "critic"


def after_critic(
    state: SimulationState, runtime: Runtime[SimulationContext]
) -> Literal["commit", "assistant", "user", "finish"]:
    """Accepted → commit; rejected reply → regenerate it; user out of role → regenerate the user turn; else stop."""
    settings = runtime.context.settings
    verdict = state.get("verdict")
    check = state.get("user_check")
    if state.get("outcome") == "rejected":
        return "finish"
    if verdict is None or check is None:
        raise RuntimeError("after_critic: the critic left no verdict or user check")
    if not check.in_role:
        return "user" if state["user_attempts"] <= settings.max_user_retries else "finish"
    if verdict.accepted:
        return "commit"
    if verdict.rejection == "critic_failed":
        return "finish"
    return "assistant" if state["answer_attempts"] <= settings.max_assistant_retries else "finish"


def after_commit(state: SimulationState) -> Literal["user", "finish"]:
    """Next link, or finish when the path is done."""
    return "user" if state["step"] < len(state["path"]) else "finish"


__all__ = ["after_assistant", "after_commit", "after_critic", "after_user"]
