"""Wiring: plan → user → retrieve → assistant → critic → (commit → user | assistant | user | finish)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from codi_agents import nodes
from codi_agents.context import SimulationContext
from codi_agents.settings import Settings
from codi_agents.state import SimulationInput, SimulationOutput, SimulationState
from codi_agents.tasks.base import Task

NODES_PER_EXCHANGE = 6
"""user, retrieve, assistant, critic, commit, and one spare, per exchange without retries."""


def standard_graph(task: Task) -> StateGraph[Any, Any, Any, Any]:
    """The turn loop every built-in task uses; a task may replace it with `graph_builder`."""
    del task  # the standard loop is the same for every task; prompts and rules come from the context
    graph = StateGraph(
        SimulationState, context_schema=SimulationContext, input_schema=SimulationInput, output_schema=SimulationOutput
    )
    graph.add_node("plan", nodes.plan)
    graph.add_node("user", nodes.user)
    graph.add_node("retrieve", nodes.retrieve)
    graph.add_node("assistant", nodes.assistant)
    graph.add_node("critic", nodes.critic)
    graph.add_node("commit", nodes.commit)
    graph.add_node("finish", nodes.finish)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "user")
    graph.add_conditional_edges("user", nodes.after_user)
    graph.add_edge("retrieve", "assistant")
    graph.add_conditional_edges("assistant", nodes.after_assistant)
    graph.add_conditional_edges("critic", nodes.after_critic)
    graph.add_conditional_edges("commit", nodes.after_commit)
    graph.add_edge("finish", END)
    return graph


def build_graph(task: Task) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled conversation graph of `task`."""
    builder = task.graph_builder or standard_graph
    return builder(task).compile(name=f"codi-{task.name}")


def recursion_limit(settings: Settings, max_turns: int) -> int:
    """A recursion limit that the counters in state can never reach; it is a backstop, not the bound."""
    per_attempt = 2 + 2 * (settings.max_assistant_retries + 1)
    per_exchange = NODES_PER_EXCHANGE + (settings.max_user_retries + 1) * per_attempt
    return 10 + max_turns * per_exchange
