"""The graph for the LangGraph CLI and Studio (`langgraph dev`), built on import only by that tool.

Studio sends JSON, while codi's simulation graph takes live objects (chat models, the passage index)
through its run context, which Studio cannot build. So Studio gets a graph of its own: its input
names a document (a path or raw text), a persona, a flow and a seed; its one node opens a session
(the endpoint the environment configures, e.g. `CODI_BASE_URL`, else the embedded model) and runs
the real simulation graph inside it, which Studio traces as a nested run; its output is the
conversation record as JSON.
"""

from __future__ import annotations

from typing import (
    Any,
    NotRequired,  # pydantic needs these on Python < 3.12
)

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from codi_agents.simulation._simulate import asimulate


class StudioInput(TypedDict):
    """What a Studio run asks for."""

    document: str
    """A document path (.txt, .md, .html, .pdf) or the raw text of one."""
    persona: NotRequired[str]
    """Persona name or .toml path; default: the task's first persona."""
    flow: NotRequired[str]
    """Flow graph name or .toml path; default: the task's."""
    seed: NotRequired[int]
    """Seed of the flow path and the conversation id."""
    task: NotRequired[str]
    """Conversational task (see `codi tasks`); default: grounded_qa."""


class StudioOutput(TypedDict):
    """What a Studio run returns."""

    accepted: bool
    """Whether the critic accepted the conversation."""
    conversation: dict[str, Any]
    """The full `Conversation` record, as JSON."""


class StudioState(StudioInput, StudioOutput, total=False):
    """Input and output together: the state of the Studio graph."""


async def simulate_conversation(state: StudioState) -> StudioOutput:
    """Run one real simulation for the requested document and persona."""
    conversation = await asimulate(
        state["document"],
        state.get("persona"),
        flow=state.get("flow"),
        seed=state.get("seed"),
        task=state.get("task"),
    )
    return {"accepted": conversation.accepted, "conversation": conversation.model_dump(mode="json")}


def build_studio_graph() -> Any:
    """The compiled Studio graph: START → simulate → END."""
    builder = StateGraph(StudioState, input_schema=StudioInput, output_schema=StudioOutput)
    builder.add_node("simulate", simulate_conversation)
    builder.add_edge(START, "simulate")
    builder.add_edge("simulate", END)
    return builder.compile(name="codi")


graph = build_studio_graph()
