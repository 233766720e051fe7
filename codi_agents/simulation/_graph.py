"""Wiring: plan → user → retrieve → assistant → critic → (user | assistant | finish), the critic committing an
accepted exchange.

Each node that branches decides where to go in the same LangGraph step (`then`: a `Command` with the update and
the next node) instead of through a conditional edge, which LangGraph runs as a step of its own with a fresh
copy of the state; the routers in `_routers.py` decide either way. Committing an accepted exchange is quick
bookkeeping, so it runs in the critic's step (`nodes.commit` and `routers.after_commit`, inlined).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, get_origin, get_type_hints

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from codi_agents.config._settings import Settings
from codi_agents.simulation import _nodes as nodes
from codi_agents.simulation import _routers as routers
from codi_agents.simulation._context import SimulationContext
from codi_agents.simulation._state import SimulationInput, SimulationOutput, SimulationState
from codi_agents.tasks._base import Task

NODES_PER_EXCHANGE = 6
"""user, retrieve, assistant, critic, and two spare, per exchange without retries."""


def standard_graph(task: Task) -> StateGraph[Any, Any, Any, Any]:
    """The turn loop every built-in task uses; a task may replace it with `graph_builder`."""
    del task  # the standard loop is the same for every task; prompts and rules come from the context
    graph = StateGraph(
        SimulationState, context_schema=SimulationContext, input_schema=SimulationInput, output_schema=SimulationOutput
    )
    graph.add_node("plan", on_loop(nodes.plan))
    graph.add_node("user", then(nodes.user, routers.after_user), destinations=("retrieve", "finish"))
    graph.add_node("retrieve", nodes.retrieve)
    graph.add_node("assistant", then(nodes.assistant, routers.after_assistant), destinations=("critic", "finish"))
    graph.add_node(
        "critic",
        then(nodes.critic, routers.after_critic, inline={"commit": (nodes.commit, routers.after_commit)}),
        destinations=("assistant", "user", "finish"),
    )
    graph.add_node("finish", on_loop(nodes.finish))
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "user")
    graph.add_edge("retrieve", "assistant")
    graph.add_edge("finish", END)
    return graph


Node = Callable[..., Any]
Router = Callable[..., str]


def then(
    node: Node, router: Router, *, inline: Mapping[str, tuple[Node, Router]] | None = None
) -> Callable[..., Awaitable[Command[Any]]]:
    """`node`, then `router` on the state as the node's update leaves it, in one step: a `Command` carrying both.

    When the router names a node in `inline`, that node and its router run in the same step too, their update
    laid over this one's as if they had run after it. A router sees the state with the updates laid over it key
    by key, so it may read only keys without a reducer (the routers read counters, verdicts and the outcome)."""
    steps = [(node, router), *(inline or {}).values()]
    takes = {id(function): _takes_runtime(function) for pair in steps for function in pair}

    async def step(state: SimulationState, runtime: Runtime[SimulationContext]) -> Command[Any]:
        update: dict[str, Any] = {}
        current, route = node, router
        remaining = dict(inline or {})  # each inlined node at most once per step
        while True:
            made = current(state | update, runtime) if takes[id(current)] else current(state | update)
            if inspect.isawaitable(made):
                made = await made
            if reduced := _REDUCED_KEYS & update.keys() & made.keys():
                raise RuntimeError(f"{current.__name__} writes {sorted(reduced)} in the step of {node.__name__}")
            update = {**update, **made}
            after = state | update
            goto = route(after, runtime) if takes[id(route)] else route(after)
            if goto not in remaining:
                return Command(update=update, goto=goto)
            current, route = remaining.pop(goto)

    step.__name__ = node.__name__
    step.__doc__ = node.__doc__
    return step


_REDUCED_KEYS = frozenset(
    key for key, hint in get_type_hints(SimulationState, include_extras=True).items() if get_origin(hint) is Annotated
)
"""State keys with a reducer (turns, usage, ...): two updates of one of them in one step would not add up."""


def _takes_runtime(function: Callable[..., Any]) -> bool:
    return "runtime" in inspect.signature(function).parameters


def on_loop(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run a quick synchronous node or router on the event loop instead of LangGraph's thread pool.

    LangGraph runs plain functions in an executor; for bookkeeping that takes microseconds, the
    thread hand-off costs more than the work (and contends for the GIL under load).
    """
    if _takes_runtime(function):

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
