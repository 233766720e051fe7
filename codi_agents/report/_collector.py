"""The collector of a report: one streaming pass over the conversations of a run, keeping every count.

Counts are exact; distributions of scores and signals come from seeded reservoir samples, which
hold every value below `VALUE_SAMPLE` values, so small runs are measured exactly and large ones
in flat memory. `_collect` turns what it kept into the report's typed sections.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from codi_agents._record import Conversation, Turn, Verdict
from codi_agents._security import injection_markers
from codi_agents.errors import CodiError
from codi_agents.report._language import Dialogue, LanguageAccumulator
from codi_agents.report._metrics import Reservoir
from codi_agents.report._schema import FlaggedPassage
from codi_agents.rundir._groups import AcceptanceByGroup

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
VALUE_SAMPLE = 20_000
SCORE_BINS = 20
EXCERPT_CHARS = 240
CONTEXT_PHENOMENA = frozenset({"coreference", "anaphora", "ellipsis", "context dependence", "clarification request"})
"""Link phenomena that make a user turn lean on earlier turns."""


@dataclass
class Example:
    """How often something happened, and its first occurrence."""

    count: int = 0
    conversation: str = ""
    doc: str = ""
    reason: str = ""
    reply: str = ""


@dataclass
class Collector:
    """Everything the report counts, filled one conversation at a time."""

    seed: int = 0
    conversations: int = 0
    accepted: int = 0
    tasks: set[str] = field(default_factory=set)
    versions: Counter[str] = field(default_factory=Counter)
    fingerprints: Counter[str] = field(default_factory=Counter)
    durations: Reservoir[float] = field(default_factory=lambda: Reservoir(VALUE_SAMPLE))
    first_start: datetime | None = None
    last_end: datetime | None = None
    usage: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    role_models: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    rejections: dict[str, Example] = field(default_factory=dict)
    turn_rejections: dict[str, Example] = field(default_factory=dict)
    flags: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    exchanges_accepted: Counter[int] = field(default_factory=Counter)
    exchanges_rejected: Counter[int] = field(default_factory=Counter)
    links: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    """Link -> [planned by the flow, asked by the user simulator]."""
    groups: AcceptanceByGroup = field(default_factory=AcceptanceByGroup)
    assistant_turns: int = 0
    regenerated_turns: int = 0
    preference_pairs: int = 0
    scores: dict[bool, Reservoir[float]] = field(
        default_factory=lambda: {True: Reservoir(VALUE_SAMPLE, 1), False: Reservoir(VALUE_SAMPLE, 2)}
    )
    score_bins: dict[bool, list[int]] = field(default_factory=lambda: {True: [0] * SCORE_BINS, False: [0] * SCORE_BINS})
    signals: dict[tuple[str, bool], Reservoir[float]] = field(default_factory=dict)
    decided_by: Counter[str] = field(default_factory=Counter)
    flagged: dict[str, FlaggedPassage] = field(default_factory=dict)
    flagged_docs: set[str] = field(default_factory=set)
    markers: Counter[str] = field(default_factory=Counter)
    shown_flagged: int = 0
    injection_turns: int = 0
    injection_conversations: int = 0
    injection_examples: dict[str, Example] = field(default_factory=dict)

    def add(self, conversation: Conversation, language: LanguageAccumulator, everything: LanguageAccumulator) -> None:
        """Count one conversation; its dialogue goes to `everything`, and to `language` when accepted."""
        self.conversations += 1
        self.accepted += conversation.accepted
        self.tasks.add(conversation.task)
        self.versions[conversation.codi_version] += 1
        self.fingerprints[conversation.settings_fingerprint] += 1
        self._add_time_and_usage(conversation)
        for flag in conversation.flags:
            self.flags[flag] += 1
        for failure in conversation.failures:
            self.failures[failure.stage] += 1
        if not conversation.accepted:
            note(self.rejections, conversation.rejection or "unknown", conversation, conversation.rejection_reason)
        (self.exchanges_accepted if conversation.accepted else self.exchanges_rejected)[conversation.exchanges] += 1
        self.groups.add(
            persona=conversation.persona.name,
            flow=conversation.flow,
            accepted=conversation.accepted,
            exchanges=conversation.exchanges,
            rejection=conversation.rejection,
        )
        for link in conversation.path:
            self.links[link][0] += 1
        self._add_turns(conversation)
        self._add_injection(conversation)
        dialogue = _dialogue(conversation)
        everything.add(dialogue)
        if conversation.accepted:
            language.add(dialogue)

    def _add_time_and_usage(self, conversation: Conversation) -> None:
        self.durations.add(conversation.duration_seconds)
        end = conversation.created_at if conversation.created_at.tzinfo else conversation.created_at.replace(tzinfo=UTC)
        start = end - timedelta(seconds=conversation.duration_seconds)
        self.first_start = start if self.first_start is None else min(self.first_start, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)
        for role, usage in conversation.usage.items():
            tally = self.usage[role]
            tally[0] += usage.requests
            tally[1] += usage.input_tokens
            tally[2] += usage.output_tokens
        for role, model in conversation.models.items():
            self.role_models[role].add(model)

    def _add_turns(self, conversation: Conversation) -> None:
        for index, turn in enumerate(conversation.turns):
            if turn.role == "user":
                if turn.link:
                    self.links[turn.link][1] += 1  # checks are counted by the critic's `link_realisation`
                continue
            self.assistant_turns += 1
            if turn.rejected_attempts and turn.verdict is not None and turn.verdict.accepted:
                self.regenerated_turns += 1
                if conversation.accepted:
                    self.preference_pairs += sum(
                        1
                        for attempt in turn.rejected_attempts
                        if attempt.content.strip() and attempt.content.strip() != turn.content.strip()
                    )
            verdicts = [(attempt.verdict, attempt.content) for attempt in turn.rejected_attempts]
            if turn.verdict is not None:
                verdicts.append((turn.verdict, turn.content))
            for verdict, content in verdicts:
                self._add_verdict(verdict, content, conversation, index)

    def _add_verdict(self, verdict: Verdict, content: str, conversation: Conversation, index: int) -> None:
        accepted = verdict.accepted
        self.scores[accepted].add(verdict.score)
        self.score_bins[accepted][min(int(verdict.score * SCORE_BINS), SCORE_BINS - 1)] += 1
        self.decided_by[verdict.decided_by.split(":judge_weight")[0] or "unknown"] += 1
        for name, value in verdict.signals.items():
            key = (name, accepted)
            if key not in self.signals:
                self.signals[key] = Reservoir(VALUE_SAMPLE, len(self.signals))
            self.signals[key].add(value)
        if accepted:
            return
        category = verdict.rejection or "unknown"
        note(self.turn_rejections, category, conversation, verdict.reasons, content)
        if category == "follows_injection":
            self.injection_turns += 1
            note(self.injection_examples, f"{conversation.id}:{index}", conversation, verdict.reasons, content)

    def _add_injection(self, conversation: Conversation) -> None:
        shown = False
        for passage in conversation.passages.values():
            markers = [flag.split(":", 1)[1] for flag in passage.flags if flag.startswith("possible_injection")]
            if not markers:
                continue
            shown = True
            if passage.id not in self.flagged:
                self.flagged_docs.add(passage.doc_id)
                self.markers.update(markers)
                self.flagged[passage.id] = FlaggedPassage(
                    id=passage.id, doc_id=passage.doc_id, markers=markers, excerpt=flagged_excerpt(passage.text)
                )
        self.shown_flagged += shown
        self.injection_conversations += conversation.rejection == "follows_injection"


def _dialogue(conversation: Conversation) -> Dialogue:
    users = [turn for turn in conversation.turns if turn.role == "user"]
    return Dialogue(
        user=[turn.content for turn in users],
        assistant=[turn.content for turn in conversation.turns if turn.role == "assistant"],
        depends_by_checks=[_depends_by_checks(conversation, turn) for turn in users],
        flagged_near_duplicate="near_duplicate" in conversation.flags,
    )


def _depends_by_checks(conversation: Conversation, turn: Turn) -> bool:
    if turn.check is None or not turn.check.link_realised or not turn.link:
        return False
    return bool(_link_phenomena(conversation).get(turn.link, frozenset()) & CONTEXT_PHENOMENA)


def _link_phenomena(conversation: Conversation) -> dict[str, frozenset[str]]:
    """The phenomena of each link of the conversation's flow: kept in the record; for records written before
    it was kept, read from the installed flow, and when that is not installed either, empty with a warning."""
    if conversation.link_phenomena is not None:
        kept = conversation.link_phenomena
        return {name: frozenset(phenomenon.lower() for phenomenon in phenomena) for name, phenomena in kept.items()}
    return _installed_flow_phenomena(conversation.task, conversation.flow)


@cache
def _installed_flow_phenomena(task: str, flow: str) -> dict[str, frozenset[str]]:
    """The phenomena of each link of an installed flow; empty, with a warning naming it, when it cannot be found."""
    import warnings

    from codi_agents.inputs._flows import load_flow
    from codi_agents.tasks import get_task

    try:
        graph = load_flow(flow, search_dirs=get_task(task).flow_dirs)
    except CodiError as exc:
        warnings.warn(
            f"The records of flow {flow!r} (task {task!r}) predate codi keeping link phenomena, and the flow is not "
            f"installed here ({exc}); their turns count as unknown, not as context-dependent, in the report.",
            UserWarning,
            stacklevel=2,
        )
        return {}
    return {name: frozenset(phenomenon.lower() for phenomenon in link.phenomena) for name, link in graph.links.items()}


def note(
    table: dict[str, Example], key: str, conversation: Conversation, reason: str | None, reply: str | None = None
) -> None:
    example = table.setdefault(key, Example())
    example.count += 1
    if example.count == 1:
        example.conversation = conversation.id
        example.doc = conversation.doc_id
        example.reason = excerpt(reason or "")
        if reply is None:
            replies = [turn.content for turn in conversation.turns if turn.role == "assistant"]
            reply = replies[-1] if replies else ""
        example.reply = excerpt(reply)


def flagged_excerpt(text: str) -> str:
    """The first sentence (or line) that carries an injection marker, else the start of the passage."""
    for piece in _SENTENCE.split(text):
        if injection_markers(piece):
            return excerpt(piece)
    return excerpt(text)


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
