"""The plan of a run: which conversation about which document, persona, flow and seed, in which order.

The plan is a pure function of the corpus, the weighted personas and flows, the seed and the
settings fingerprint, so the same config always gives the same conversation ids in the same order.
Conversations are dealt round-robin over the documents (the k-th goes to document k mod D), and
each one's persona, flow and seed depend only on (seed, document id, its number for that document):
raising `n` extends a run without changing the conversations already planned.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from codi_agents._ids import conversation_id, stable_hash
from codi_agents.inputs._flows import FlowGraph, load_flow
from codi_agents.inputs._personas import Persona, available_personas, load_persona
from codi_agents.tasks._base import Task

SEED_SPACE = 2**31
T = TypeVar("T")


class Named(Protocol):
    """What the plan needs of a document: its id (a `Document`, or a `DocRef` into a streamed corpus)."""

    @property
    def id(self) -> str: ...


D = TypeVar("D", bound=Named)


@dataclass(frozen=True)
class Planned(Generic[D]):
    """One conversation to simulate (about a `Document`, or a `DocRef` a worker reads)."""

    number: int
    """Position in the plan, from 0."""
    id: str
    """The conversation id `Session.simulate` will give it."""
    document: D
    persona: Persona
    flow: FlowGraph
    seed: int


@dataclass(frozen=True)
class Plan(Generic[D]):
    """A deterministic, lazily enumerated list of `total` conversations."""

    task: str
    documents: Sequence[D]
    personas: Sequence[tuple[Persona, float]]
    flows: Sequence[tuple[FlowGraph, float]]
    seed: int
    total: int
    fingerprint: str
    """The session's settings fingerprint; it enters every conversation id."""

    def __post_init__(self) -> None:
        if not self.documents or not self.personas or not self.flows:
            raise ValueError("a plan needs at least one document, one persona and one flow")

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[Planned[D]]:
        return (self.item(number) for number in range(self.total))

    def item(self, number: int) -> Planned[D]:
        """The `number`-th conversation of the plan."""
        count = len(self.documents)
        document = self.documents[number % count]
        round_number = number // count
        seed = int(stable_hash([self.seed, document.id, round_number]), 16) % SEED_SPACE
        rng = random.Random(seed)
        persona = _weighted(rng, self.personas)
        flow = _weighted(rng, self.flows)
        return Planned(
            number=number,
            id=conversation_id(self.task, document.id, persona, flow, seed, self.fingerprint),
            document=document,
            persona=persona,
            flow=flow,
            seed=seed,
        )


def longest_first(items: Iterable[Planned[D]], lookahead: int) -> Iterator[Planned[D]]:
    """`items` with, among the next `lookahead` of them, the one with the longest planned path first.

    A run ends when its last conversations do. Started in plan order, a long one started late keeps the
    run going while the other workers idle; started longest first (within a window, so that a streamed
    plan is never read whole), the last to start are the shortest and the workers finish together. The
    path is the one the simulation will sample (`FlowGraph.sample_path` with the conversation's seed);
    regenerated turns still vary the lengths."""
    window: list[tuple[int, int, Planned[D]]] = []
    for item in items:
        heapq.heappush(window, (-len(item.flow.sample_path(item.seed)), item.number, item))
        if len(window) >= max(lookahead, 1):
            yield heapq.heappop(window)[2]
    while window:
        yield heapq.heappop(window)[2]


def ordered_documents(documents: Sequence[T], *, shuffle: bool, seed: int) -> list[T]:
    """The documents in file order, or in an order fixed by the seed."""
    ordered = list(documents)
    if shuffle:
        random.Random(seed).shuffle(ordered)
    return ordered


def _weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    return rng.choices([option for option, _ in options], weights=[weight for _, weight in options], k=1)[0]


def weighted_personas(weights: Mapping[str, float], task: Task) -> list[tuple[Persona, float]]:
    """The personas named in `weights` (name or path); by default the task's, or every persona made for it."""
    if weights:
        chosen = [(load_persona(name, search_dirs=task.persona_dirs), weight) for name, weight in weights.items()]
        return [(persona, weight) for persona, weight in chosen if weight > 0]
    names = task.default_personas or tuple(available_personas(task.persona_dirs))
    personas = [load_persona(name, search_dirs=task.persona_dirs) for name in names]
    return [(persona, 1.0) for persona in personas if not persona.tasks or task.name in persona.tasks]


def weighted_flows(weights: Mapping[str, float], task: Task, default: str | None) -> list[tuple[FlowGraph, float]]:
    """The flows named in `weights` (name or path); by default `default` or the task's flow."""
    names = weights or {default or task.default_flow: 1.0}
    chosen = [(load_flow(name, search_dirs=task.flow_dirs), weight) for name, weight in names.items()]
    return [(flow, weight) for flow, weight in chosen if weight > 0]
