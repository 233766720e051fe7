"""The numbers of a run report, as typed models: what `--json` writes and what the HTML page shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from codi_agents.report._metrics import quantile


class Distribution(BaseModel):
    """Summary of a list of numbers; quantiles are linear-interpolated."""

    count: int = 0
    mean: float | None = None
    min: float | None = None
    p10: float | None = None
    p25: float | None = None
    median: float | None = None
    p75: float | None = None
    p90: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float], count: int | None = None) -> Distribution:
        """Summary of `values`; `count` overrides the count when `values` is a sample of a larger stream."""
        if not values:
            return cls(count=count or 0)
        ordered = sorted(float(value) for value in values)
        return cls(
            count=len(ordered) if count is None else count,
            mean=sum(ordered) / len(ordered),
            min=ordered[0],
            p10=quantile(ordered, 0.1),
            p25=quantile(ordered, 0.25),
            median=quantile(ordered, 0.5),
            p75=quantile(ordered, 0.75),
            p90=quantile(ordered, 0.9),
            max=ordered[-1],
        )

    @classmethod
    def of_counts(cls, counts: dict[int, int]) -> Distribution:
        """Summary of integers given as value -> how often."""
        values: list[float] = []
        for value, times in sorted(counts.items()):
            values.extend([float(value)] * times)
        return cls.of(values)


class Histogram(BaseModel):
    """Counts in bins: `counts[i]` values fell in `[edges[i], edges[i + 1])`."""

    edges: list[float]
    counts: list[int]


class RoleUsage(BaseModel):
    """Requests, tokens and estimated cost of one role over the whole run."""

    role: str
    models: list[str] = Field(default_factory=list)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = Field(default=None, description="Estimated from the prices per 1k tokens, if known.")


class RejectionRow(BaseModel):
    """One rejection category with its share and one example."""

    category: str
    count: int
    share: float
    example_conversation: str = ""
    example_doc: str = ""
    example_reason: str = ""
    example_reply: str = ""


class Overview(BaseModel):
    """The run at a glance."""

    run_dir: str
    generated_at: str
    codi_version: str = ""
    tasks: list[str] = Field(default_factory=list)
    fingerprint: str = ""
    planned: int | None = None
    conversations: int = 0
    accepted: int = 0
    rejected: int = 0
    acceptance_rate: float | None = None
    wall_time_seconds: float | None = None
    wall_time_source: str = Field(default="", description="`summary.json`, or `records` (first start to last end).")
    conversation_seconds: Distribution = Field(default_factory=Distribution)
    usage: list[RoleUsage] = Field(default_factory=list)
    total_tokens: int = 0
    total_cost: float | None = None
    rejections: list[RejectionRow] = Field(default_factory=list)
    flags: dict[str, int] = Field(default_factory=dict)
    failures: dict[str, int] = Field(default_factory=dict, description="Failures kept in records, by stage.")
    warnings: list[str] = Field(default_factory=list)
    run_summary: dict[str, Any] = Field(
        default_factory=dict,
        description="Figures only the run knows, from summary.json: status, why it stopped, conversations lost to "
        "server errors, documents used and skipped, conversations per minute.",
    )


class LinkRow(BaseModel):
    """A conversation link: how often the flow planned it, the user asked it, and the critic found it realised."""

    link: str
    planned: int = 0
    asked: int = 0
    checked: int = 0
    realised: int = 0
    realisation_rate: float | None = None
    in_role_rate: float | None = Field(default=None, description="Checked turns that stayed in the user's role.")


class GroupRow(BaseModel):
    """Acceptance within one persona or flow."""

    name: str
    conversations: int = 0
    accepted: int = 0
    acceptance_rate: float | None = None
    mean_exchanges: float | None = None


class Structure(BaseModel):
    """Shape of the conversations and of the plan."""

    exchanges_accepted: dict[int, int] = Field(default_factory=dict, description="Exchanges -> conversations.")
    exchanges_rejected: dict[int, int] = Field(default_factory=dict)
    links: list[LinkRow] = Field(default_factory=list)
    personas: list[GroupRow] = Field(default_factory=list)
    flows: list[GroupRow] = Field(default_factory=list)
    assistant_turns: int = 0
    regenerated_turns: int = Field(default=0, description="Accepted assistant turns after a rejected attempt.")
    preference_pairs: int = Field(default=0, description="Pairs `codi export --format preference` would write.")


class SignalRow(BaseModel):
    """One grounding signal over accepted and rejected assistant replies."""

    name: str
    accepted: Distribution
    rejected: Distribution


class Critic(BaseModel):
    """What the critic saw and decided, turn by turn (rejected attempts included)."""

    accepted_turns: int = 0
    rejected_turns: int = 0
    scores_accepted: Distribution = Field(default_factory=Distribution)
    scores_rejected: Distribution = Field(default_factory=Distribution)
    score_histogram_accepted: Histogram | None = None
    score_histogram_rejected: Histogram | None = None
    signals: list[SignalRow] = Field(default_factory=list)
    turn_rejections: list[RejectionRow] = Field(default_factory=list)
    decided_by: dict[str, int] = Field(default_factory=dict)


class LanguageStats(BaseModel):
    """Language and diversity of a set of conversations (synthetic or human)."""

    name: str
    conversations: int = 0
    user_turns: int = 0
    assistant_turns: int = 0
    user_turns_per_conversation: dict[int, int] = Field(default_factory=dict)
    user_words: dict[int, int] = Field(default_factory=dict, description="Words -> user turns.")
    assistant_words: dict[int, int] = Field(default_factory=dict, description="Words -> assistant turns.")
    user_words_summary: Distribution = Field(default_factory=Distribution)
    assistant_words_summary: Distribution = Field(default_factory=Distribution)
    turns_summary: Distribution = Field(default_factory=Distribution)
    question_types: dict[str, int] = Field(default_factory=dict)
    distinct: dict[str, float | None] = Field(
        default_factory=dict, description="`user-1`, `user-2`, `assistant-1`, `assistant-2`."
    )
    distinct_sample_turns: int = Field(default=0, description="User turns the distinct-n values were measured on.")
    later_user_turns: int = Field(default=0, description="User turns after the first: the base of both shares.")
    dependent_share: float | None = Field(default=None, description="User turns after the first with a context cue.")
    dependent_by_checks_share: float | None = Field(
        default=None, description="User turns after the first planned as context-dependent and found realised."
    )
    repeated_question_share: float | None = Field(
        default=None, description="User turns that repeat an earlier user turn of the same conversation."
    )
    near_duplicate_share: float | None = Field(
        default=None, description="Conversations whose user side is a near-duplicate of another's (MinHash)."
    )
    near_duplicate_sample: int = 0
    flagged_near_duplicate_share: float | None = Field(
        default=None, description="Conversations the run flagged `near_duplicate`."
    )


class FlaggedPassage(BaseModel):
    """A passage holding instruction-like text aimed at a model."""

    id: str
    doc_id: str
    markers: list[str]
    excerpt: str


class Example(BaseModel):
    """One rejected reply, to show what a number stands for."""

    conversation: str
    doc: str
    reason: str
    reply: str


class Injection(BaseModel):
    """Prompt injection through documents: what was flagged, and what the critic caught."""

    flagged_passages: int = 0
    documents_with_flags: int = 0
    conversations_shown_flagged: int = 0
    markers: dict[str, int] = Field(default_factory=dict)
    follows_injection_turns: int = 0
    follows_injection_conversations: int = 0
    passages: list[FlaggedPassage] = Field(default_factory=list, description="The first flagged passages.")
    examples: list[Example] = Field(default_factory=list, description="Replies rejected as following an injection.")


class RunReport(BaseModel):
    """Everything `codi report` measures about a run."""

    overview: Overview
    structure: Structure
    critic: Critic
    language: LanguageStats
    reference: LanguageStats | None = None
    injection: Injection
