"""A run's report from one streaming pass over its run directory: the collector's counts as typed sections.

The run's own files are read with their typed models: the summary's wall time and planned count,
the manifest's version, fingerprint and prices. Without a summary (a run still in its first
session), the wall time comes from the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from codi_agents._record import Conversation
from codi_agents.critic._user_turns import LinkRealisation, link_realisation
from codi_agents.errors import RunDirectoryError
from codi_agents.report._collector import SCORE_BINS, Collector, Example
from codi_agents.report._language import Dialogue, LanguageAccumulator, compare
from codi_agents.report._metrics import Reservoir
from codi_agents.report._schema import (
    Critic,
    Distribution,
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
from codi_agents.report._schema import Example as ExampleRow
from codi_agents.rundir._groups import GroupTally
from codi_agents.rundir._models import RunManifest, RunSummary
from codi_agents.rundir._reader import RunDirectory

MAX_LISTED_PASSAGES = 20
MAX_EXAMPLES = 5
SUMMARY_FIELDS = ("status", "stopped_because", "errors", "documents", "conversations_per_minute")
"""What only the run knows, shown from summary.json."""

Prices = Mapping[str, tuple[float, float]]
"""Role -> (input, output) price per 1k tokens."""


def collect_report(
    run: RunDirectory,
    reference: Iterable[Dialogue] | None = None,
    *,
    reference_name: str = "reference",
    prices: Prices | None = None,
    seed: int = 0,
) -> RunReport:
    """Read every conversation of `run` once and measure it; `reference` dialogues are measured alike."""
    collector = Collector(seed=seed)
    accepted_language = LanguageAccumulator("synthetic (accepted)", seed)
    all_language = LanguageAccumulator("synthetic (all finished; none accepted)", seed)

    def measured(conversations: Iterable[Conversation]) -> Iterator[Conversation]:
        for conversation in conversations:
            collector.add(conversation, accepted_language, all_language)
            yield conversation

    # One pass: the critic's own aggregation of user-turn checks consumes the stream the collector taps.
    realisation = link_realisation(measured(run.conversations()))
    if collector.conversations == 0:
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


def _overview(run: RunDirectory, c: Collector, prices: Prices) -> Overview:
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
    manifest, summary = run.manifest, run.summary
    wall, source = (summary.wall_seconds, "summary.json") if summary is not None else (None, "")
    if wall is None and c.first_start is not None and c.last_end is not None:
        wall, source = (c.last_end - c.first_start).total_seconds(), "records"
    return Overview(
        run_dir=str(run.path),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        codi_version=manifest.codi_version if manifest else _most_common(c.versions),
        tasks=sorted(c.tasks),
        fingerprint=manifest.fingerprint if manifest else _most_common(c.fingerprints),
        planned=summary.planned if summary else manifest.planned if manifest else None,
        conversations=c.conversations,
        accepted=c.accepted,
        rejected=c.conversations - c.accepted,
        acceptance_rate=c.accepted / c.conversations if c.conversations else None,
        wall_time_seconds=wall,
        wall_time_source=source,
        conversation_seconds=Distribution.of(c.durations.items, c.durations.seen),
        usage=usage,
        total_tokens=sum(row.input_tokens + row.output_tokens for row in usage),
        total_cost=sum(costs) if costs else None,
        rejections=_rows(c.rejections, c.conversations - c.accepted),
        flags=dict(c.flags.most_common()),
        failures=dict(c.failures.most_common()),
        warnings=list(run.warnings),
        run_summary=_run_summary(summary),
    )


def _run_summary(summary: RunSummary | None) -> dict[str, object]:
    if summary is None:
        return {}
    shown = summary.model_dump(mode="json", include=set(SUMMARY_FIELDS))
    return {key: shown[key] for key in SUMMARY_FIELDS if shown[key] not in (None, {}, [])}


def _most_common(counts: Mapping[str, int]) -> str:
    return max(counts, key=lambda key: counts[key]) if counts else ""


def _structure(c: Collector, realisation: Mapping[str, LinkRealisation]) -> Structure:
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
        personas=_groups(c.groups.by_persona),
        flows=_groups(c.groups.by_flow),
        assistant_turns=c.assistant_turns,
        regenerated_turns=c.regenerated_turns,
        preference_pairs=c.preference_pairs,
    )


def _critic(c: Collector) -> Critic:
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


def _injection(c: Collector) -> Injection:
    return Injection(
        flagged_passages=len(c.flagged),
        documents_with_flags=len(c.flagged_docs),
        conversations_shown_flagged=c.shown_flagged,
        markers=dict(c.markers.most_common()),
        follows_injection_turns=c.injection_turns,
        follows_injection_conversations=c.injection_conversations,
        passages=list(c.flagged.values())[:MAX_LISTED_PASSAGES],
        examples=[
            ExampleRow(conversation=example.conversation, doc=example.doc, reason=example.reason, reply=example.reply)
            for example in list(c.injection_examples.values())[:MAX_EXAMPLES]
        ],
    )


def _rows(table: dict[str, Example], total: int) -> list[RejectionRow]:
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


def _groups(groups: Mapping[str, GroupTally]) -> list[GroupRow]:
    return [
        GroupRow(
            name=name,
            conversations=group.conversations,
            accepted=group.accepted,
            acceptance_rate=group.acceptance_rate,
            mean_exchanges=group.mean_exchanges,
        )
        for name, group in sorted(groups.items(), key=lambda item: (-item[1].conversations, item[0]))
    ]


def prices_from_manifest(manifest: RunManifest | None) -> dict[str, tuple[float, float]]:
    """Prices per 1k tokens by role, as the run config set them (`[prices.ROLE] input = ... output = ...`)."""
    return manifest.prices() if manifest is not None else {}
