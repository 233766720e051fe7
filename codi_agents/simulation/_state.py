"""The graph's state: input, internal and output, with reducers in the types."""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

from codi_agents._record import Failure, RejectedAttempt, RejectionCategory, Turn, Usage, UserCheck, Verdict
from codi_agents.inputs._documents import Document
from codi_agents.inputs._flows import FlowGraph
from codi_agents.inputs._passages import Passage
from codi_agents.inputs._personas import Persona

Outcome = Literal["running", "accepted", "rejected"]


def merge_passages(left: dict[str, Passage], right: dict[str, Passage]) -> dict[str, Passage]:
    """Passages shown so far, by id."""
    return {**left, **right}


def add_usage(left: dict[str, Usage], right: dict[str, Usage]) -> dict[str, Usage]:
    """Token usage per role, summed."""
    merged = dict(left)
    for role, usage in right.items():
        merged[role] = merged.get(role, Usage()) + usage
    return merged


class SimulationInput(TypedDict):
    """What one conversation starts from."""

    document: Document
    """The document the conversation is grounded in."""
    passages: list[Passage]
    """All passages of the document, in order (for the user simulator's view)."""
    persona: Persona
    """Who the simulated user is."""
    flow: FlowGraph
    """The conversation-flow graph to sample the path from."""
    seed: int
    """Seed for the path and the user's view of the document."""


class SimulationOutput(TypedDict, total=False):
    """What the graph hands back to build the `Conversation` record."""

    path: list[str]
    """The sampled links, one per exchange."""
    turns: Annotated[list[Turn], operator.add]
    """Committed turns, user and assistant alternating."""
    passages_used: Annotated[dict[str, Passage], merge_passages]
    """Every passage shown to the assistant."""
    failures: Annotated[list[Failure], operator.add]
    """Failed generations and judgements, with raw outputs."""
    usage: Annotated[dict[str, Usage], add_usage]
    """Tokens and requests per role."""
    outcome: Outcome
    """`accepted` or `rejected` once finished."""
    rejection: RejectionCategory | None
    """Why the conversation was rejected."""
    rejection_reason: str | None
    """The rejection in words."""
    truncated: bool
    """True when the accepted-prefix policy dropped a failing tail."""


class SimulationState(SimulationInput, SimulationOutput, total=False):
    """Input, output, and the bookkeeping of the exchange in progress."""

    step: int
    """Index in `path` of the exchange in progress."""
    user_draft: str
    """The user message of the exchange in progress."""
    user_attempts: int
    """User messages generated for this exchange (bounded by `max_user_retries`)."""
    retrieval_query: str
    """The contextual query sent to retrieval for this exchange."""
    retrieved: list[Passage]
    """Passages retrieved for this exchange."""
    answer_draft: str
    """The assistant reply under review."""
    answer_attempts: int
    """Replies generated for this exchange (bounded by `max_assistant_retries`)."""
    rejected_attempts: list[RejectedAttempt]
    """Replies of this exchange that the critic rejected."""
    verdict: Verdict | None
    """The critic's verdict on `answer_draft`."""
    user_check: UserCheck | None
    """The critic's check of `user_draft`."""
