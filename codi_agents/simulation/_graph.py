"""Wiring: plan → user → retrieve → assistant → critic → (commit → user | assistant | user | finish)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from codi_agents.config._settings import Settings
from codi_agents.simulation import _nodes as nodes
from codi_agents.simulation import _routers as routers
from codi_agents.simulation._context import SimulationContext
from codi_agents.simulation._state import SimulationInput, SimulationOutput, SimulationState
from codi_agents.tasks._base import Task

NODES_PER_EXCHANGE = 6
"""user, retrieve, assistant, critic, commit, and one spare, per exchange without retries."""


def standard_graph(task: Task) -> StateGraph[Any, Any, Any, Any]:
    """The turn loop every built-in task uses; a task may replace it with `graph_builder`."""
    del task  # the standard loop is the same for every task; prompts and rules come from the context
    graph = StateGraph(
        SimulationState, context_schema=SimulationContext, input_schema=SimulationInput, output_schema=SimulationOutput
    )
    graph.add_node("plan", on_loop(nodes.plan))
    graph.add_node("user", nodes.user)
    graph.add_node("retrieve", nodes.retrieve)
    graph.add_node("assistant", nodes.assistant)
    graph.add_node("critic", nodes.critic)
    graph.add_node("commit", on_loop(nodes.commit))
    graph.add_node("finish", on_loop(nodes.finish))
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "user")
    graph.add_conditional_edges("user", on_loop(routers.after_user), ["retrieve", "finish"])
    graph.add_edge("retrieve", "assistant")
    graph.add_conditional_edges("assistant", on_loop(routers.after_assistant), ["critic", "finish"])
    graph.add_conditional_edges("critic", on_loop(routers.after_critic), ["commit", "assistant", "user", "finish"])
    graph.add_conditional_edges("commit", on_loop(routers.after_commit), ["user", "finish"])
    graph.add_edge("finish", END)
    return graph


def on_loop(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run a quick synchronous node or router on the event loop instead of LangGraph's thread pool.

    LangGraph runs plain functions in an executor; for bookkeeping that takes microseconds, the
    thread hand-off costs more than the work (and contends for the GIL under load).
    """
    if "runtime" in inspect.signature(function).parameters:

        async def with_runtime(state: SimulationState, runtime: Runtime[SimulationContext]) -> Any:
            return function(state, runtime)

        wrapped: Callable[..., Awaitable[Any]] = with_runtime
    else:

        async def without_runtime(state: SimulationState) -> Any:
            return function(state)

        wrapped = without_runtime
    wrapped.__name__ = function.__name__
    wrapped.__doc__ = function.__doc__
    return wrapped


def build_graph(task: Task) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled conversation graph of `task`."""
    builder = task.graph_builder or standard_graph
    return builder(task).compile(name=f"codi-{task.name}")


def recursion_limit(settings: Settings, max_turns: int) -> int:
    """A recursion limit that the counters in state can never reach; it is a backstop, not the bound."""
    per_attempt = 2 + 2 * (settings.max_assistant_retries + 1)
    per_exchange = NODES_PER_EXCHANGE + (settings.max_user_retries + 1) * per_attempt
    return 10 + max_turns * per_exchange
