"""One streaming pass over a run directory, gathering every number of the report.

Counts are exact; distributions of scores and signals come from seeded reservoir samples, which
hold every value below `VALUE_SAMPLE` values, so small runs are measured exactly and large ones
in flat memory.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from codi_agents._record import Conversation, Turn, Verdict
from codi_agents._security import injection_markers
from codi_agents.critic._user_turns import LinkRealisation, link_realisation
from codi_agents.errors import CodiError
from codi_agents.report._language import Dialogue, LanguageAccumulator, compare
from codi_agents.report._metrics import Reservoir
from codi_agents.report._schema import (
    Critic,
    Distribution,
    Example,
    FlaggedPassage,
    GroupRow,
    Histogram,
    Injection,
    LinkRow,
    Overview,
    RejectionRow,
    RoleUsage,
    RunReport,
    SignalRow,
    Structure,
)
from codi_agents.rundir._reader import RunDirectory

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
VALUE_SAMPLE = 20_000
SCORE_BINS = 20
EXCERPT_CHARS = 240
MAX_LISTED_PASSAGES = 20
MAX_EXAMPLES = 5
CONTEXT_PHENOMENA = frozenset({"coreference", "anaphora", "ellipsis", "context dependence", "clarification request"})
"""Link phenomena that make a user turn lean on earlier turns."""
WALL_TIME_KEYS = ("wall_time_seconds", "wall_seconds", "elapsed_seconds", "wall_time")
PLANNED_KEYS = ("planned", "conversations_planned", "total_planned")
SUMMARY_KEYS = ("status", "stopped_because", "errors", "documents", "conversations_per_minute")

Prices = Mapping[str, tuple[float, float]]
"""Role -> (input, output) price per 1k tokens."""


@dataclass
class _Group:
    conversations: int = 0
    accepted: int = 0
    exchanges: int = 0


@dataclass
class _Example:
    count: int = 0
    conversation: str = ""
    doc: str = ""
    reason: str = ""
    reply: str = ""


@dataclass
class _Collector:
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
    rejections: dict[str, _Example] = field(default_factory=dict)
    turn_rejections: dict[str, _Example] = field(default_factory=dict)
    flags: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    exchanges_accepted: Counter[int] = field(default_factory=Counter)
    exchanges_rejected: Counter[int] = field(default_factory=Counter)
    links: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    """Link -> [planned by the flow, asked by the user simulator]."""
    personas: dict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    flows: dict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
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
    injection_examples: dict[str, _Example] = field(default_factory=dict)

    def add(self, conversation: Conversation, language: LanguageAccumulator, everything: LanguageAccumulator) -> None:
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
            _note(self.rejections, conversation.rejection or "unknown", conversation, conversation.rejection_reason)
        (self.exchanges_accepted if conversation.accepted else self.exchanges_rejected)[conversation.exchanges] += 1
        for groups, name in ((self.personas, conversation.persona.name), (self.flows, conversation.flow)):
            group = groups[name]
            group.conversations += 1
            group.accepted += conversation.accepted
            group.exchanges += conversation.exchanges
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
        _note(self.turn_rejections, category, conversation, verdict.reasons, content)
        if category == "follows_injection":
            self.injection_turns += 1
            _note(self.injection_examples, f"{conversation.id}:{index}", conversation, verdict.reasons, content)

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
                    id=passage.id, doc_id=passage.doc_id, markers=markers, excerpt=_flagged_excerpt(passage.text)
                )
        self.shown_flagged += shown
        self.injection_conversations += conversation.rejection == "follows_injection"


def collect_report(
    run: RunDirectory,
    reference: Iterable[Dialogue] | None = None,
    *,
    reference_name: str = "reference",
    prices: Prices | None = None,
    seed: int = 0,
) -> RunReport:
    """Read every conversation of `run` once and measure it; `reference` dialogues are measured alike."""
    collector = _Collector(seed=seed)
    accepted_language = LanguageAccumulator("synthetic (accepted)", seed)
    all_language = LanguageAccumulator("synthetic (all finished; none accepted)", seed)

    def measured(conversations: Iterable[Conversation]) -> Iterator[Conversation]:
        for conversation in conversations:
            collector.add(conversation, accepted_language, all_language)
            yield conversation

    # One pass: the critic's own aggregation of user-turn checks consumes the stream the collector taps.
    realisation = link_realisation(measured(run.conversations()))
    if collector.conversations == 0:
        from codi_agents.rundir._reader import RunDirectoryError

        raise RunDirectoryError(f"{run.path} holds no conversations yet: accepted.jsonl and rejected.jsonl are empty.")
    # The language of the training data is that of the accepted conversations; when a run accepted none
    # (a weak model), measuring what it did generate still shows how far it is from people.
    language = accepted_language if collector.accepted else all_language
    reference_stats = None
    if reference is not None:
        reference_language = LanguageAccumulator(reference_name, seed)
        for dialogue in reference:
            reference_language.add(dialogue)
        synthetic_stats, reference_stats = compare(language, reference_language)
    else:
        synthetic_stats = language.result()
    return RunReport(
        overview=_overview(run, collector, prices if prices is not None else prices_from_manifest(run.manifest)),
        structure=_structure(collector, realisation),
        critic=_critic(collector),
        language=synthetic_stats,
        reference=reference_stats,
        injection=_injection(collector),
    )


def _overview(run: RunDirectory, c: _Collector, prices: Prices) -> Overview:
    usage = []
    for role in sorted(c.usage):
        requests, input_tokens, output_tokens = c.usage[role]
        price = prices.get(role)
        cost = (input_tokens * price[0] + output_tokens * price[1]) / 1000 if price else None
        usage.append(
            RoleUsage(
                role=role,
                models=sorted(c.role_models.get(role, set())),
                requests=requests,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost,
            )
        )
    costs = [row.cost for row in usage if row.cost is not None]
    wall, source = _wall_time(run.summary), "summary.json"
    if wall is None and c.first_start is not None and c.last_end is not None:
        wall, source = (c.last_end - c.first_start).total_seconds(), "records"
    manifest = run.manifest
    return Overview(
        run_dir=str(run.path),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        codi_version=str(manifest.get("codi_version") or (c.versions.most_common(1)[0][0] if c.versions else "")),
        tasks=sorted(c.tasks),
        fingerprint=str(manifest.get("fingerprint") or (c.fingerprints.most_common(1)[0][0] if c.fingerprints else "")),
        planned=_find_int(run.summary, PLANNED_KEYS) or _find_int(manifest, PLANNED_KEYS),
        conversations=c.conversations,
        accepted=c.accepted,
        rejected=c.conversations - c.accepted,
        acceptance_rate=c.accepted / c.conversations if c.conversations else None,
        wall_time_seconds=wall,
        wall_time_source=source if wall is not None else "",
        conversation_seconds=Distribution.of(c.durations.items, c.durations.seen),
        usage=usage,
        total_tokens=sum(row.input_tokens + row.output_tokens for row in usage),
        total_cost=sum(costs) if costs else None,
        rejections=_rows(c.rejections, c.conversations - c.accepted),
        flags=dict(c.flags.most_common()),
        failures=dict(c.failures.most_common()),
        warnings=list(run.warnings),
        run_summary={key: run.summary[key] for key in SUMMARY_KEYS if run.summary.get(key) not in (None, {}, [])},
    )


def _structure(c: _Collector, realisation: Mapping[str, LinkRealisation]) -> Structure:
    links = []
    for name, tally in sorted(c.links.items(), key=lambda item: (-item[1][0], item[0])):
        checks = realisation.get(name)
        links.append(
            LinkRow(
                link=name,
                planned=tally[0],
                asked=tally[1],
                checked=checks.turns if checks else 0,
                realised=checks.realised if checks else 0,
                realisation_rate=checks.rate if checks and checks.turns else None,
                in_role_rate=checks.in_role_rate if checks and checks.turns else None,
            )
        )
    return Structure(
        exchanges_accepted=dict(sorted(c.exchanges_accepted.items())),
        exchanges_rejected=dict(sorted(c.exchanges_rejected.items())),
        links=links,
        personas=_groups(c.personas),
        flows=_groups(c.flows),
        assistant_turns=c.assistant_turns,
        regenerated_turns=c.regenerated_turns,
        preference_pairs=c.preference_pairs,
    )


def _critic(c: _Collector) -> Critic:
    edges = [round(i / SCORE_BINS, 4) for i in range(SCORE_BINS + 1)]
    names = sorted({name for name, _ in c.signals})
    empty: Reservoir[float] = Reservoir(0)
    return Critic(
        accepted_turns=c.scores[True].seen,
        rejected_turns=c.scores[False].seen,
        scores_accepted=Distribution.of(c.scores[True].items, c.scores[True].seen),
        scores_rejected=Distribution.of(c.scores[False].items, c.scores[False].seen),
        score_histogram_accepted=Histogram(edges=edges, counts=c.score_bins[True]),
        score_histogram_rejected=Histogram(edges=edges, counts=c.score_bins[False]),
        signals=[
            SignalRow(
                name=name,
                accepted=Distribution.of(
                    c.signals.get((name, True), empty).items, c.signals.get((name, True), empty).seen
                ),
                rejected=Distribution.of(
                    c.signals.get((name, False), empty).items, c.signals.get((name, False), empty).seen
                ),
            )
            for name in names
        ],
        turn_rejections=_rows(c.turn_rejections, c.scores[False].seen),
        decided_by=dict(c.decided_by.most_common()),
    )


def _injection(c: _Collector) -> Injection:
    return Injection(
        flagged_passages=len(c.flagged),
        documents_with_flags=len(c.flagged_docs),
        conversations_shown_flagged=c.shown_flagged,
        markers=dict(c.markers.most_common()),
        follows_injection_turns=c.injection_turns,
        follows_injection_conversations=c.injection_conversations,
        passages=list(c.flagged.values())[:MAX_LISTED_PASSAGES],
        examples=[
            Example(conversation=example.conversation, doc=example.doc, reason=example.reason, reply=example.reply)
            for example in list(c.injection_examples.values())[:MAX_EXAMPLES]
        ],
    )


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


def _note(
    table: dict[str, _Example], key: str, conversation: Conversation, reason: str | None, reply: str | None = None
) -> None:
    example = table.setdefault(key, _Example())
    example.count += 1
    if example.count == 1:
        example.conversation = conversation.id
        example.doc = conversation.doc_id
        example.reason = _excerpt(reason or "")
        if reply is None:
            replies = [turn.content for turn in conversation.turns if turn.role == "assistant"]
            reply = replies[-1] if replies else ""
        example.reply = _excerpt(reply)


def _rows(table: dict[str, _Example], total: int) -> list[RejectionRow]:
    return [
        RejectionRow(
            category=category,
            count=example.count,
            share=example.count / total if total else 0.0,
            example_conversation=example.conversation,
            example_doc=example.doc,
            example_reason=example.reason,
            example_reply=example.reply,
        )
        for category, example in sorted(table.items(), key=lambda item: (-item[1].count, item[0]))
    ]


def _groups(groups: dict[str, _Group]) -> list[GroupRow]:
    return [
        GroupRow(
            name=name,
            conversations=group.conversations,
            accepted=group.accepted,
            acceptance_rate=group.accepted / group.conversations if group.conversations else None,
            mean_exchanges=group.exchanges / group.conversations if group.conversations else None,
        )
        for name, group in sorted(groups.items(), key=lambda item: (-item[1].conversations, item[0]))
    ]


def _flagged_excerpt(text: str) -> str:
    """The first sentence (or line) that carries an injection marker, else the start of the passage."""
    for piece in _SENTENCE.split(text):
        if injection_markers(piece):
            return _excerpt(piece)
    return _excerpt(text)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def prices_from_manifest(manifest: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Prices per 1k tokens by role from a `prices` table anywhere in the manifest (as the run config writes
    `[prices.assistant] input = ... output = ...`); a bare number is used for input and output alike."""
    table = _find(manifest, "prices")
    if not isinstance(table, Mapping):
        return {}
    prices: dict[str, tuple[float, float]] = {}
    for role, price in table.items():
        if isinstance(price, int | float):
            prices[str(role)] = (float(price), float(price))
        elif isinstance(price, Mapping):
            prices[str(role)] = (
                float(price.get("input", price.get("prompt", 0.0)) or 0.0),
                float(price.get("output", price.get("completion", 0.0)) or 0.0),
            )
    return prices


def _find(mapping: Mapping[str, Any], key: str, depth: int = 3) -> Any:
    if key in mapping:
        return mapping[key]
    if depth == 0:
        return None
    for value in mapping.values():
        if isinstance(value, Mapping):
            found = _find(value, key, depth - 1)
            if found is not None:
                return found
    return None


def _find_int(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = _find(mapping, key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _wall_time(summary: Mapping[str, Any]) -> float | None:
    for key in WALL_TIME_KEYS:
        value = _find(summary, key, depth=1)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None
