"""The conversation record: what `simulate` returns and what a run writes, one JSON object per line.

Everything needed to audit a conversation travels with it: the sampled flow path, every turn
with its link, passages and the critic's verdict, the rejected attempts and raw outputs of
failures, the models and token usage per role, and the settings fingerprint.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from codi_agents.inputs._passages import Passage
from codi_agents.inputs._personas import Persona

RejectionCategory = Literal[
    "not_grounded",
    "unfaithful",
    "does_not_answer",
    "missed_abstention",
    "wrong_abstention",
    "follows_injection",
    "low_score",
    "user_out_of_role",
    "critic_failed",
    "generation_failed",
    "request_rejected",
]
"""Why a turn or a conversation was rejected, as a category for summaries; details go in the reason."""


class Usage(BaseModel):
    """Tokens and requests spent by one role."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class UserCheck(BaseModel):
    """The critic's check of a user turn: did it realise the planned link, and stay in role."""

    reasons: str = Field(default="", description="Why, in a sentence.")
    link_realised: bool = Field(description="The message is the kind of turn the link asked for.")
    in_role: bool = Field(description="The message is a user's: it asks, and never answers itself.")
    signals: dict[str, float] = Field(default_factory=dict, description="Cheap checks behind the decision.")


class Verdict(BaseModel):
    """The critic's judgement of one assistant turn. Reasons come first, then the typed decision."""

    reasons: str = Field(description="The critic's reasoning.")
    grounded: bool = Field(description="Every claim is supported by the passages.")
    faithful: bool = Field(description="Nothing contradicts the passages; nothing is invented.")
    answers_question: bool = Field(description="The reply addresses what the user asked.")
    abstained: bool = Field(default=False, description="The reply says the document does not hold the answer.")
    score: float = Field(ge=0, le=1, description="Combined confidence that the turn is good training data.")
    accepted: bool = Field(description="The turn passed.")
    rejection: RejectionCategory | None = Field(default=None, description="Why the turn failed, if it did.")
    signals: dict[str, float] = Field(default_factory=dict, description="Cheap grounding signals.")
    judge: dict[str, Any] | None = Field(default=None, description="The LLM judge's typed output, if it ran.")
    decided_by: str = Field(default="", description="How signals and judge were combined, e.g. `calibrated:v1`.")


class RejectedAttempt(BaseModel):
    """An assistant reply the critic rejected, kept for auditing and preference pairs."""

    content: str
    passage_ids: list[str] = Field(default_factory=list)
    verdict: Verdict


class Turn(BaseModel):
    """One message. User turns carry their link; assistant turns carry passages and a verdict."""

    role: Literal["user", "assistant"]
    content: str
    link: str | None = Field(default=None, description="User turns: the conversation link realised.")
    check: UserCheck | None = Field(default=None, description="User turns: the critic's check.")
    retrieval_query: str | None = Field(default=None, description="Assistant turns: the query sent to retrieval.")
    passage_ids: list[str] = Field(default_factory=list, description="Assistant turns: passages shown.")
    verdict: Verdict | None = Field(default=None, description="Assistant turns: the critic's verdict.")
    attempts: int = Field(default=1, ge=1, description="Generations it took, the accepted one included.")
    rejected_attempts: list[RejectedAttempt] = Field(default_factory=list, description="Earlier, rejected replies.")


class Failure(BaseModel):
    """A generation or judgement that failed, with the raw output, kept as data."""

    stage: str = Field(description="The node: user, assistant, critic.")
    error: str = Field(description="What went wrong.")
    raw_output: str = Field(default="", description="What the model returned, verbatim.")
    turn: int = Field(default=0, description="Exchange index (0-based) where it happened.")


class Conversation(BaseModel):
    """One simulated, document-grounded conversation and everything needed to audit it."""

    id: str = Field(description="Deterministic: document, persona, flow, seed and settings fingerprint.")
    task: str
    doc_id: str
    doc_title: str = ""
    doc_notes: dict[str, int] = Field(
        default_factory=dict,
        description="What reading the document changed: `truncated_at_bytes` (cut at the size limit), "
        "`decoding_errors` (invalid UTF-8 bytes replaced).",
    )
    persona: Persona
    flow: str
    link_phenomena: dict[str, list[str]] | None = Field(
        default=None,
        description="The phenomena of each link of the flow, by link (a copy, so the record can be read without "
        "the flow file); None in records written before codi kept it.",
    )
    path: list[str] = Field(description="The sampled sequence of links.")
    user_mode: str = "reader"
    turns: list[Turn] = Field(default_factory=list)
    passages: dict[str, Passage] = Field(default_factory=dict, description="Passages shown to the assistant, by id.")
    accepted: bool = False
    rejection: RejectionCategory | None = None
    rejection_reason: str | None = None
    failures: list[Failure] = Field(default_factory=list)
    models: dict[str, str] = Field(default_factory=dict, description="Model per role.")
    usage: dict[str, Usage] = Field(default_factory=dict, description="Token usage per role.")
    seed: int = 0
    settings_fingerprint: str = ""
    codi_version: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_seconds: float = 0.0
    flags: list[str] = Field(default_factory=list, description="Marks added later, e.g. `near_duplicate`.")

    @property
    def exchanges(self) -> int:
        """Number of assistant turns."""
        return sum(1 for turn in self.turns if turn.role == "assistant")

    def grounding_passages(self, max_passages: int | None = None) -> list[Passage]:
        """Passages the assistant was grounded on, in order of first use, at most `max_passages`.

        Under a limit, every assistant turn keeps its best-ranked passage before any turn gets its
        second, so no later answer loses all of its grounding to the passages of earlier ones."""
        per_turn = [[pid for pid in turn.passage_ids if pid in self.passages] for turn in self.turns]
        ordered = list(dict.fromkeys(pid for ids in per_turn for pid in ids))
        if max_passages is None or len(ordered) <= max_passages:
            return [self.passages[pid] for pid in ordered]
        chosen: set[str] = set()
        for rank in range(max(len(ids) for ids in per_turn)):
            for ids in per_turn:
                if rank < len(ids) and len(chosen) < max_passages:
                    chosen.add(ids[rank])
        return [self.passages[pid] for pid in ordered if pid in chosen]
