"""The run's statistics: what was made, per persona and flow, why conversations failed, what it cost.

A `Tally` counts every record of the run directory (those of earlier, resumed sessions included);
`build_summary` turns it into the `RunSummary` written to `DIR/summary.json`; `summary_tables`
shows it in the terminal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from codi_agents._record import Conversation
from codi_agents.batch._streamed import RunCorpus
from codi_agents.config._run_config import Price
from codi_agents.rundir._groups import AcceptanceByGroup
from codi_agents.rundir._models import (
    CostEstimate,
    CpuSummary,
    DocumentCounts,
    IndexSummary,
    NearDuplicateCounts,
    ReasonCount,
    RequestCounts,
    RunStatus,
    RunSummary,
    SkippedFile,
    TokenCounts,
)

TOP_REASONS = 10
TOKEN_KEYS = ("requests", "input_tokens", "output_tokens")
MAX_LISTED_SKIPS = 200
"""Skipped, truncated and re-decoded files named in summary.json (all of them are counted, and each is logged)."""


@dataclass
class Tally:
    """Counts over finished conversations."""

    accepted: int = 0
    rejected: int = 0
    groups: AcceptanceByGroup = field(default_factory=AcceptanceByGroup)
    rejections: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def finished(self) -> int:
        return self.accepted + self.rejected

    def add_conversation(self, conversation: Conversation) -> None:
        """Count one finished conversation."""
        self._add(
            accepted=conversation.accepted,
            persona=conversation.persona.name,
            flow=conversation.flow,
            turns=conversation.exchanges,
            rejection=conversation.rejection or ("near_duplicate" if "dropped" in conversation.flags else None),
            flags=conversation.flags,
            usage={role: usage.model_dump() for role, usage in conversation.usage.items()},
        )

    def add_record(self, record: dict[str, Any]) -> None:
        """Count one conversation read back from the run directory (a dict, not a model: faster)."""
        persona = record.get("persona") or {}
        turns = record.get("turns") or []
        flags = [str(flag) for flag in record.get("flags") or []]
        self._add(
            accepted=bool(record.get("accepted")),
            persona=str(persona.get("name", "?")) if isinstance(persona, dict) else "?",
            flow=str(record.get("flow", "?")),
            turns=sum(1 for turn in turns if isinstance(turn, dict) and turn.get("role") == "assistant"),
            rejection=record.get("rejection") or ("near_duplicate" if "dropped" in flags else None),
            flags=flags,
            usage={str(role): usage for role, usage in (record.get("usage") or {}).items() if isinstance(usage, dict)},
        )

    def _add(
        self,
        *,
        accepted: bool,
        persona: str,
        flow: str,
        turns: int,
        rejection: str | None,
        flags: list[str],
        usage: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.groups.add(persona=persona, flow=flow, accepted=accepted, exchanges=turns, rejection=rejection)
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1
            self.rejections[rejection or "unknown"] += 1
        self.flags.update(flags)
        for role, counts in usage.items():
            for key in TOKEN_KEYS:
                self.tokens[role][key] += int(counts.get(key, 0) or 0)


def cost_estimate(tokens: Mapping[str, Counter[str]], prices: Mapping[str, Price]) -> CostEstimate | None:
    """Dollars per role and in all, from tokens and prices per 1k tokens; None when no price is set."""
    if not prices:
        return None
    by_role = {
        role: round(
            (counts["input_tokens"] * prices[role].input + counts["output_tokens"] * prices[role].output) / 1000, 6
        )
        for role, counts in tokens.items()
        if role in prices
    }
    return CostEstimate(currency="USD", total=round(sum(by_role.values()), 6), by_role=by_role)


def build_summary(
    tally: Tally,
    *,
    status: RunStatus,
    planned: int,
    wall_seconds: float,
    earlier_wall_seconds: float,
    finished_now: int,
    errors: int,
    requests: RequestCounts,
    documents: DocumentCounts,
    near_duplicates: NearDuplicateCounts,
    prices: Mapping[str, Price],
    stopped_because: str | None = None,
    index: IndexSummary | None = None,
    cpu: CpuSummary | None = None,
) -> RunSummary:
    """The summary as written to summary.json. `wall_seconds` covers every session of the run directory;
    `conversations_per_minute` is this session's pace."""
    finished = tally.finished
    return RunSummary(
        status=status,
        stopped_because=stopped_because,
        planned=planned,
        finished=finished,
        remaining=max(planned - finished, 0),
        accepted=tally.accepted,
        rejected=tally.rejected,
        acceptance_rate=round(tally.accepted / finished, 4) if finished else None,
        errors=errors,
        by_persona={name: group.summary() for name, group in sorted(tally.groups.by_persona.items())},
        by_flow={name: group.summary() for name, group in sorted(tally.groups.by_flow.items())},
        rejection_reasons=[
            ReasonCount(reason=reason, count=count) for reason, count in tally.rejections.most_common(TOP_REASONS)
        ],
        flags=dict(tally.flags),
        tokens={
            role: TokenCounts(**{key: counts[key] for key in TOKEN_KEYS})
            for role, counts in sorted(tally.tokens.items())
        },
        cost=cost_estimate(tally.tokens, prices),
        wall_seconds=round(earlier_wall_seconds + wall_seconds, 2),
        session_wall_seconds=round(wall_seconds, 2),
        finished_this_session=finished_now,
        conversations_per_minute=round(finished_now / wall_seconds * 60, 2) if wall_seconds > 0 else None,
        requests=requests,
        documents=documents,
        near_duplicates=near_duplicates,
        index=index,
        cpu=cpu,
    )


def summary_tables(summary: RunSummary | Mapping[str, Any]) -> list[Table]:
    """The summary as rich tables: totals, per persona, per flow, rejection reasons, tokens and cost."""
    s = summary if isinstance(summary, RunSummary) else RunSummary.model_validate(summary)
    totals = Table(title=f"run {s.status}", show_header=False, box=None)
    totals.add_column(style="dim")
    totals.add_column(justify="right")
    rate, cost, documents, requests = s.acceptance_rate, s.cost, s.documents, s.requests
    rows: list[tuple[str, object]] = [
        ("planned", s.planned),
        ("finished", f"{s.finished} ({s.finished_this_session} in this session)"),
        ("accepted", f"{s.accepted} ({rate:.0%})" if rate is not None else s.accepted),
        ("rejected", s.rejected),
        ("failed on server errors (retried on resume)", s.errors),
        ("near-duplicates flagged", s.near_duplicates.flagged),
        ("near-duplicates dropped", s.near_duplicates.dropped),
        (
            "documents used / skipped / duplicates / truncated",
            f"{documents.used} / {documents.skipped_count} / {documents.duplicates} / {documents.truncated_count}",
        ),
        ("wall time (this session)", f"{s.wall_seconds:.1f} s ({s.session_wall_seconds:.1f} s)"),
        ("conversations per minute (this session)", s.conversations_per_minute),
        (
            "requests / retries / rate limited",
            f"{requests.requests:,} / {requests.retries:,} / {requests.rate_limited:,}",
        ),
        ("estimated cost", f"${cost.total:.4f}" if cost else "(no prices in the config)"),
    ]
    if s.index is not None:
        where = f"{s.index.kind}: {s.index.location or 'memory'}"
        rows.append(("passages embedded / found indexed", f"{s.index.passages_embedded:,} / "
                     f"{s.index.passages_reused:,} ({where})"))  # fmt: skip
        if s.index.sentence_vectors_kept or s.index.sentence_vectors_reused:
            rows.append(("passage-sentence vectors kept / found kept", f"{s.index.sentence_vectors_kept:,} / "
                         f"{s.index.sentence_vectors_reused:,}"))  # fmt: skip
    if s.stopped_because:
        rows.append(("stopped because", s.stopped_because))
    for label, value in rows:
        totals.add_row(label, str(value))
    tables = [totals]
    for groups, title in ((s.by_persona, "persona"), (s.by_flow, "flow")):
        table = Table(title=f"per {title}")
        table.add_column(title)
        for column in ("accepted", "rejected", "acceptance", "mean turns"):
            table.add_column(column, justify="right")
        table.add_column("top rejection reason")
        for name, group in groups.items():
            top = group.top_rejection_reasons[0] if group.top_rejection_reasons else None
            table.add_row(
                name,
                str(group.accepted),
                str(group.rejected),
                f"{group.acceptance_rate:.0%}" if group.acceptance_rate is not None else "-",
                f"{group.mean_turns:.1f}" if group.mean_turns is not None else "-",
                f"{top.reason} ({top.count})" if top else "-",
            )
        tables.append(table)
    if s.rejection_reasons:
        reasons = Table(title="top rejection reasons")
        reasons.add_column("reason")
        reasons.add_column("conversations", justify="right")
        for item in s.rejection_reasons:
            reasons.add_row(item.reason, str(item.count))
        tables.append(reasons)
    tokens = Table(title="tokens per role")
    for column in ("role", "requests", "input tokens", "output tokens", "cost"):
        tokens.add_column(column, justify="left" if column == "role" else "right")
    by_role = cost.by_role if cost else {}
    for role, counts in s.tokens.items():
        tokens.add_row(
            role,
            f"{counts.requests:,}",
            f"{counts.input_tokens:,}",
            f"{counts.output_tokens:,}",
            f"${by_role[role]:.4f}" if role in by_role else "-",
        )
    tables.append(tokens)
    return tables


def document_counts(corpus: RunCorpus) -> DocumentCounts:
    """What happened to the corpus's documents; the lists are capped at `MAX_LISTED_SKIPS`."""
    return DocumentCounts(
        used=len(corpus.documents),
        skipped_count=len(corpus.skipped),
        skipped=[SkippedFile(source=item.source, reason=item.reason) for item in corpus.skipped[:MAX_LISTED_SKIPS]],
        duplicates=len(corpus.duplicates),
        truncated_count=len(corpus.truncated),
        truncated=corpus.truncated[:MAX_LISTED_SKIPS],
        replaced_bytes=sum(corpus.replaced_bytes.values()),
        with_replaced_bytes=dict(list(corpus.replaced_bytes.items())[:MAX_LISTED_SKIPS]),
    )
