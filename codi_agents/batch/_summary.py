"""The run's statistics: what was made, per persona and flow, why conversations failed, what it cost.

Built incrementally from every record in the run directory (those of earlier, resumed sessions
included) and written to `DIR/summary.json`; `summary_tables` shows it in the terminal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from codi_agents._record import Conversation
from codi_agents.config._run_config import Price

TOP_REASONS = 10
TOP_GROUP_REASONS = 3
"""Rejection reasons listed per persona and per flow."""


@dataclass
class _Group:
    accepted: int = 0
    rejected: int = 0
    turns: int = 0
    rejections: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        total = self.accepted + self.rejected
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "acceptance_rate": round(self.accepted / total, 4) if total else None,
            "mean_turns": round(self.turns / total, 2) if total else None,
            "top_rejection_reasons": [
                {"reason": reason, "count": count} for reason, count in self.rejections.most_common(TOP_GROUP_REASONS)
            ],
        }


@dataclass
class Tally:
    """Counts over finished conversations."""

    accepted: int = 0
    rejected: int = 0
    by_persona: dict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    by_flow: dict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
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
        usage: dict[str, dict[str, Any]],
    ) -> None:
        for group in (self.by_persona[persona], self.by_flow[flow]):
            group.turns += turns
            if accepted:
                group.accepted += 1
            else:
                group.rejected += 1
                group.rejections[rejection or "unknown"] += 1
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1
            self.rejections[rejection or "unknown"] += 1
        self.flags.update(flags)
        for role, counts in usage.items():
            for key in ("requests", "input_tokens", "output_tokens"):
                self.tokens[role][key] += int(counts.get(key, 0) or 0)


def cost_estimate(tokens: dict[str, Counter[str]], prices: dict[str, Price]) -> dict[str, Any] | None:
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
    return {"currency": "USD", "total": round(sum(by_role.values()), 6), "by_role": by_role}


def build_summary(
    tally: Tally,
    *,
    status: str,
    planned: int,
    wall_seconds: float,
    earlier_wall_seconds: float,
    finished_now: int,
    errors: int,
    requests: dict[str, int],
    documents: dict[str, Any],
    near_duplicates: dict[str, Any],
    prices: dict[str, Price],
    stopped_because: str | None = None,
) -> dict[str, Any]:
    """The summary as written to summary.json. `wall_seconds` covers every session of the run directory;
    `conversations_per_minute` is this session's pace."""
    finished = tally.finished
    return {
        "status": status,
        "stopped_because": stopped_because,
        "planned": planned,
        "finished": finished,
        "remaining": max(planned - finished, 0),
        "accepted": tally.accepted,
        "rejected": tally.rejected,
        "acceptance_rate": round(tally.accepted / finished, 4) if finished else None,
        "errors": errors,
        "by_persona": {name: group.as_dict() for name, group in sorted(tally.by_persona.items())},
        "by_flow": {name: group.as_dict() for name, group in sorted(tally.by_flow.items())},
        "rejection_reasons": [
            {"reason": reason, "count": count} for reason, count in tally.rejections.most_common(TOP_REASONS)
        ],
        "flags": dict(tally.flags),
        "tokens": {role: dict(counts) for role, counts in sorted(tally.tokens.items())},
        "cost": cost_estimate(tally.tokens, prices),
        "wall_seconds": round(earlier_wall_seconds + wall_seconds, 2),
        "session_wall_seconds": round(wall_seconds, 2),
        "finished_this_session": finished_now,
        "conversations_per_minute": round(finished_now / wall_seconds * 60, 2) if wall_seconds > 0 else None,
        "requests": requests,
        "documents": documents,
        "near_duplicates": near_duplicates,
    }


def summary_tables(summary: dict[str, Any]) -> list[Table]:
    """The summary as rich tables: totals, per persona, per flow, rejection reasons, tokens and cost."""
    totals = Table(title=f"run {summary['status']}", show_header=False, box=None)
    totals.add_column(style="dim")
    totals.add_column(justify="right")
    rate = summary["acceptance_rate"]
    cost = summary["cost"]
    rows = [
        ("planned", summary["planned"]),
        ("finished", f"{summary['finished']} ({summary['finished_this_session']} in this session)"),
        ("accepted", f"{summary['accepted']} ({rate:.0%})" if rate is not None else summary["accepted"]),
        ("rejected", summary["rejected"]),
        ("failed on server errors (retried on resume)", summary["errors"]),
        ("near-duplicates flagged", summary["near_duplicates"].get("flagged", 0)),
        ("near-duplicates dropped", summary["near_duplicates"].get("dropped", 0)),
        ("documents used / skipped / duplicates / truncated", _documents_line(summary["documents"])),
        ("wall time (this session)", f"{summary['wall_seconds']:.1f} s ({summary['session_wall_seconds']:.1f} s)"),
        ("conversations per minute (this session)", summary["conversations_per_minute"]),
        ("requests / retries / rate limited", _requests_line(summary["requests"])),
        ("estimated cost", f"${cost['total']:.4f}" if cost else "(no prices in the config)"),
    ]
    if summary.get("stopped_because"):
        rows.append(("stopped because", summary["stopped_because"]))
    for label, value in rows:
        totals.add_row(label, str(value))
    tables = [totals]
    for key, title in (("by_persona", "persona"), ("by_flow", "flow")):
        table = Table(title=f"per {title}")
        table.add_column(title)
        for column in ("accepted", "rejected", "acceptance", "mean turns"):
            table.add_column(column, justify="right")
        table.add_column("top rejection reason")
        for name, group in summary[key].items():
            share = group["acceptance_rate"]
            top = (group.get("top_rejection_reasons") or [None])[0]
            table.add_row(
                name,
                str(group["accepted"]),
                str(group["rejected"]),
                f"{share:.0%}" if share is not None else "-",
                f"{group['mean_turns']:.1f}" if group["mean_turns"] is not None else "-",
                f"{top['reason']} ({top['count']})" if top else "-",
            )
        tables.append(table)
    if summary["rejection_reasons"]:
        reasons = Table(title="top rejection reasons")
        reasons.add_column("reason")
        reasons.add_column("conversations", justify="right")
        for item in summary["rejection_reasons"]:
            reasons.add_row(item["reason"], str(item["count"]))
        tables.append(reasons)
    tokens = Table(title="tokens per role")
    for column in ("role", "requests", "input tokens", "output tokens", "cost"):
        tokens.add_column(column, justify="left" if column == "role" else "right")
    by_role = cost["by_role"] if cost else {}
    for role, counts in summary["tokens"].items():
        tokens.add_row(
            role,
            f"{counts.get('requests', 0):,}",
            f"{counts.get('input_tokens', 0):,}",
            f"{counts.get('output_tokens', 0):,}",
            f"${by_role[role]:.4f}" if role in by_role else "-",
        )
    tables.append(tokens)
    return tables


def _documents_line(documents: dict[str, Any]) -> str:
    counts = ("used", "skipped_count", "duplicates", "truncated_count")
    return " / ".join(str(documents.get(key, 0)) for key in counts)


def _requests_line(requests: dict[str, int]) -> str:
    return f"{requests.get('requests', 0):,} / {requests.get('retries', 0):,} / {requests.get('rate_limited', 0):,}"
