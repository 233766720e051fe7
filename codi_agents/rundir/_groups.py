"""Acceptance per persona and per flow: the one aggregator the run's summary and the report both use."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from codi_agents.rundir._models import GroupSummary, ReasonCount

TOP_GROUP_REASONS = 3
"""Rejection reasons listed per persona and per flow."""


@dataclass
class GroupTally:
    """Finished conversations of one persona or flow."""

    accepted: int = 0
    rejected: int = 0
    exchanges: int = 0
    rejections: Counter[str] = field(default_factory=Counter)

    @property
    def conversations(self) -> int:
        return self.accepted + self.rejected

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.conversations if self.conversations else None

    @property
    def mean_exchanges(self) -> float | None:
        return self.exchanges / self.conversations if self.conversations else None

    def add(self, *, accepted: bool, exchanges: int, rejection: str | None) -> None:
        """Count one finished conversation (`rejection`: its reason, when it was rejected)."""
        self.exchanges += exchanges
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1
            self.rejections[rejection or "unknown"] += 1

    def summary(self) -> GroupSummary:
        """The group as `summary.json` keeps it (rates rounded)."""
        rate, mean = self.acceptance_rate, self.mean_exchanges
        return GroupSummary(
            accepted=self.accepted,
            rejected=self.rejected,
            acceptance_rate=round(rate, 4) if rate is not None else None,
            mean_turns=round(mean, 2) if mean is not None else None,
            top_rejection_reasons=[
                ReasonCount(reason=reason, count=count)
                for reason, count in self.rejections.most_common(TOP_GROUP_REASONS)
            ],
        )


@dataclass
class AcceptanceByGroup:
    """`GroupTally`s per persona and per flow."""

    by_persona: defaultdict[str, GroupTally] = field(default_factory=lambda: defaultdict(GroupTally))
    by_flow: defaultdict[str, GroupTally] = field(default_factory=lambda: defaultdict(GroupTally))

    def add(self, *, persona: str, flow: str, accepted: bool, exchanges: int, rejection: str | None) -> None:
        """Count one finished conversation under its persona and its flow."""
        for group in (self.by_persona[persona], self.by_flow[flow]):
            group.add(accepted=accepted, exchanges=exchanges, rejection=rejection)
