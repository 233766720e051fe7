"""Conversation-flow graphs: CoDi's steering mechanism, a Markov chain over conversation links.

A flow graph (`graphs/*.toml`) has a start distribution over links, and for every link an
instruction for the user simulator and the probabilities of the link that follows it. A path
sampled from the chain with a seed decides, turn by turn, what kind of question the simulated
user asks next. Files are validated on load: probabilities sum to 1, every link named exists,
and the end of the conversation is reachable from every link.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from codi_agents.errors import FlowError
from codi_agents.inputs._resources import available_files, load_toml_model, locate

END = "end"
"""Reserved transition target: the conversation ends after the current link."""

PROBABILITY_TOLERANCE = 1e-6

LinkKind = Literal["answerable", "unanswerable", "closing"]


class Link(BaseModel):
    """One kind of user turn, with what the assistant should do and where the flow goes next."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LinkKind = Field(
        default="answerable",
        description="`answerable`: the document holds the answer; `unanswerable`: the assistant must abstain; "
        "`closing`: the user wraps up and no fact is asked.",
    )
    instruction: str = Field(min_length=1, description="What the user simulator must do in this turn.")
    assistant_guidance: str = Field(default="", description="Extra guidance for the assistant's reply.")
    phenomena: list[str] = Field(default_factory=list, description="Linguistic phenomena the turn exercises.")
    next: dict[str, float] = Field(
        default_factory=dict, description="Probabilities of the next link (or `end`); empty means the flow ends here."
    )

    @field_validator("next")
    @classmethod
    def _check_next(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_distribution(value)


class FlowGraph(BaseModel):
    """A Markov chain over links, with bounds on the number of exchanges (user turn + assistant turn)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Name used to pick the flow, e.g. `grounded_qa`.")
    description: str = Field(default="", description="What conversations this flow produces.")
    min_turns: int = Field(default=2, ge=1, description="Fewest exchanges in a conversation.")
    max_turns: int = Field(default=8, ge=1, description="Most exchanges in a conversation.")
    start: dict[str, float] = Field(min_length=1, description="Probabilities of the first link.")
    links: dict[str, Link] = Field(min_length=1, description="The links, by name.")

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_distribution(value)

    @model_validator(mode="after")
    def _check_graph(self) -> Self:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is larger than max_turns ({self.max_turns}); swap them")
        if END in self.links:
            raise ValueError(f"`{END}` is reserved for the end of the conversation; rename that link")
        if END in self.start:
            raise ValueError("start: a conversation cannot end before its first link; remove `end` from start")
        self._check_targets("start", self.start)
        for name, link in self.links.items():
            self._check_targets(f"links.{name}.next", link.next)
        stuck = self._links_that_cannot_end()
        if stuck:
            raise ValueError(
                f"the end cannot be reached from link(s) {', '.join(sorted(stuck))}; "
                "give one of them a transition to `end` or to a closing link"
            )
        return self

    def _check_targets(self, where: str, distribution: dict[str, float]) -> None:
        unknown = [target for target in distribution if target != END and target not in self.links]
        if unknown:
            known = ", ".join(sorted(self.links))
            raise ValueError(f"{where}: unknown link(s) {', '.join(unknown)}; known links are {known} (or `{END}`)")

    def _links_that_cannot_end(self) -> set[str]:
        predecessors: dict[str, set[str]] = {name: set() for name in self.links}
        can_end: deque[str] = deque()
        for name, link in self.links.items():
            if self.is_terminal(name):
                can_end.append(name)
            for target in link.next:
                if target != END:
                    predecessors[target].add(name)
        reached = set(can_end)
        while can_end:
            for before in predecessors[can_end.popleft()]:
                if before not in reached:
                    reached.add(before)
                    can_end.append(before)
        return self._reachable_from_start() - reached

    def _reachable_from_start(self) -> set[str]:
        seen = {name for name in self.start}
        todo = deque(seen)
        while todo:
            for target in self.links[todo.popleft()].next:
                if target != END and target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    def is_terminal(self, name: str) -> bool:
        """True when the flow may end right after link `name`."""
        link = self.links[name]
        return not link.next or END in link.next

    def sample_path(self, seed: int) -> list[str]:
        """A path of link names, the same for the same seed, within `min_turns`..`max_turns`.

        Transitions follow the chain; the bounds only bite near them: before `min_turns` the
        end (and links after which nothing can follow) is left out where another choice exists,
        and the last allowed turn prefers a link after which the flow may end.
        """
        rng = random.Random(seed)
        path = [_draw(rng, self.start, self._allowed_first())]
        while True:
            current = self.links[path[-1]]
            if not current.next or len(path) >= self.max_turns:
                return path
            options = dict(current.next)
            if len(path) < self.min_turns:
                options = self._avoid_ending(options)
            elif len(path) == self.max_turns - 1:
                options = self._prefer_ending(options)
            choice = _draw(rng, options)
            if choice == END:
                return path
            path.append(choice)

    def _allowed_first(self) -> set[str] | None:
        if self.min_turns <= 1:
            return None
        open_links = {name for name in self.start if self.links[name].next}
        return open_links or None

    def _avoid_ending(self, options: dict[str, float]) -> dict[str, float]:
        kept = {t: p for t, p in options.items() if t != END and self.links[t].next}
        return kept if sum(kept.values()) > 0 else options

    def _prefer_ending(self, options: dict[str, float]) -> dict[str, float]:
        if END in options and options[END] > 0:
            return {END: 1.0}
        kept = {t: p for t, p in options.items() if self.is_terminal(t)}
        return kept if sum(kept.values()) > 0 else options


def load_flow(spec: FlowGraph | str | Path, *, search_dirs: Iterable[Path] = ()) -> FlowGraph:
    """A `FlowGraph` from an object, a `.toml` path, or a name looked up in `search_dirs` then `graphs/`."""
    if isinstance(spec, FlowGraph):
        return spec
    return read_flow_file(locate(spec, "graphs", search_dirs, FlowError, "flow graph"))


def read_flow_file(path: Path) -> FlowGraph:
    """Read and validate one flow-graph file; the `name` defaults to the file's stem."""
    return load_toml_model(path, FlowGraph, FlowError, name=path.stem)


def available_flows(search_dirs: Iterable[Path] = ()) -> dict[str, Path]:
    """Flow names and their files, earlier folders winning over later ones."""
    return available_files("graphs", search_dirs)


def _check_distribution(distribution: dict[str, float]) -> dict[str, float]:
    if not distribution:
        return distribution
    negative = [name for name, p in distribution.items() if not 0 <= p <= 1]
    if negative:
        raise ValueError(f"probabilities must lie in [0, 1]; fix {', '.join(negative)}")
    total = sum(distribution.values())
    if abs(total - 1) > PROBABILITY_TOLERANCE:
        raise ValueError(f"probabilities sum to {total:g}, not 1; adjust them so that they sum to 1")
    return distribution


def _draw(rng: random.Random, distribution: dict[str, float], allowed: set[str] | None = None) -> str:
    items = [(name, p) for name, p in distribution.items() if allowed is None or name in allowed]
    names = [name for name, _ in items]
    weights = [p for _, p in items]
    return rng.choices(names, weights=weights, k=1)[0]
