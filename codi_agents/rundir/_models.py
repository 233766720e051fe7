"""The run directory's JSON files as typed models: `RunManifest` (manifest.json) and `RunSummary` (summary.json).

The batch runner builds these models and writes them; `codi export`, `codi report` and a resume
parse them with the same models. A field that is missing or of the wrong type fails with an error
naming the file and the field (`read_run_file`), never with a silent fallback. Unknown fields are
ignored, so a newer codi's files stay readable where nothing was renamed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codi_agents.rundir._layout import (
    ACCEPTED_FILE,
    ERRORS_FILE,
    INDEX_DIR,
    LOCK_FILE,
    REJECTED_FILE,
    SUMMARY_FILE,
)

RunStatus = Literal["running", "completed", "incomplete", "stopped", "interrupted", "failed"]
"""`running` while a run writes; then how it ended: all done, some failed on server errors (a resume
retries them), stopped early (an endpoint down), interrupted (Ctrl-C, a consumer stopped), or failed."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- manifest.json


class Price(_Record):
    """Dollars per 1,000 tokens of one role."""

    input: float = 0.0
    output: float = 0.0


class ManifestConfig(_Record):
    """The run config as the run used it (never its `[settings]` table, which may hold keys)."""

    model_config = ConfigDict(extra="allow")

    n: int = Field(description="Conversations planned.")
    seed: int
    concurrency: int
    prices: dict[str, Price] = Field(description="Per role; empty when the config set none.")
    dedup: dict[str, Any] = Field(description="The near-duplicate policy (`enabled`, `drop`, `threshold`, ...).")


class CorpusRecord(_Record):
    """The corpus a run read."""

    source: str
    documents: int
    skipped: int
    duplicates: int
    fingerprint: str


class ConcurrencyRecord(_Record):
    """Bounds of the run: conversations in flight, requests in flight per endpoint."""

    conversations: int
    requests_per_endpoint: dict[str, int]


class RunFiles(_Record):
    """The run directory's file names, for a person reading the manifest."""

    accepted: str = ACCEPTED_FILE
    rejected: str = REJECTED_FILE
    errors: str = ERRORS_FILE
    summary: str = SUMMARY_FILE
    index: str = INDEX_DIR
    lock: str = LOCK_FILE


IndexKind = Literal["shared", "run", "folder", "server", "memory"]
"""Where a run's passage index was: an entry of the shared cache, the run directory's `index/`, the folder
of `chroma_path`, the Chroma server of `chroma_url`, or memory (a run without a directory)."""


class IndexRecord(_Record):
    """The passage index a session used."""

    kind: IndexKind
    location: str | None = Field(description="The folder or the server's URL; None in memory.")
    key: str = Field(description="Hash of what the index content depends on: chunking, embedding model, detector.")
    note: str | None = Field(default=None, description="Why the run did not use the shared cache, when it did not.")


class SessionRecord(_Record):
    """One process's session of a run (a resume adds one)."""

    started_at: datetime
    ended_at: datetime | None
    status: RunStatus
    fingerprint: str
    finished: int = Field(description="Conversations finished in the run directory when the session last wrote.")
    wall_seconds: float | None = Field(default=None, description="Absent until the session's workers started.")


class RunManifest(_Record):
    """`manifest.json`: what made the run; a resume checks its fingerprint, export and report read it."""

    codi_version: str
    created_at: datetime
    updated_at: datetime
    status: RunStatus
    fingerprint: str = Field(description="Hash of every input that shapes the planned conversations.")
    previous_fingerprints: list[str] = Field(description="Fingerprints of earlier sessions resumed with --force.")
    settings_fingerprint: str
    planned: int
    task: str
    models: dict[str, str] = Field(description="`model @ endpoint` per role; never a key.")
    config: ManifestConfig
    inputs: dict[str, Any] = Field(description="The fingerprinted inputs by part, to say what changed on a resume.")
    corpus: CorpusRecord
    concurrency: ConcurrencyRecord
    files: RunFiles = Field(default_factory=RunFiles)
    sessions: list[SessionRecord]
    index: IndexRecord | None = Field(default=None, description="The passage index of the latest session.")

    def prices(self) -> dict[str, tuple[float, float]]:
        """Role -> (input, output) dollars per 1k tokens, as the run config set them."""
        return {role: (price.input, price.output) for role, price in self.config.prices.items()}


# ---------------------------------------------------------------- summary.json


class ReasonCount(_Record):
    """A rejection reason and how many conversations it rejected."""

    reason: str
    count: int


class GroupSummary(_Record):
    """Acceptance within one persona or flow."""

    accepted: int
    rejected: int
    acceptance_rate: float | None
    mean_turns: float | None = Field(description="Exchanges (a user turn and its reply) per conversation.")
    top_rejection_reasons: list[ReasonCount]


class TokenCounts(_Record):
    """Requests and tokens of one role, from the records."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class CostEstimate(_Record):
    """Dollars, from tokens and the run config's prices."""

    currency: str
    total: float
    by_role: dict[str, float]


class RequestCounts(_Record):
    """HTTP requests of this session, over every endpoint."""

    requests: int
    retries: int
    errors: int
    rate_limited: int


class SkippedFile(_Record):
    """A corpus file or record left out, and why."""

    source: str
    reason: str


class DocumentCounts(_Record):
    """What happened to the corpus's documents (lists are capped; counts are not)."""

    used: int
    skipped_count: int
    skipped: list[SkippedFile]
    duplicates: int
    truncated_count: int
    truncated: list[str]
    replaced_bytes: int
    with_replaced_bytes: dict[str, int]


class NearDuplicateCounts(_Record):
    """Near-duplicates flagged and dropped, under which policy."""

    flagged: int
    by_flag: dict[str, int]
    dropped: int
    policy: str
    threshold: float


class IndexSummary(IndexRecord):
    """The passage index this session used, and what it embedded (counted by document, over the whole corpus
    for a run with workers, over the documents conversations started on otherwise)."""

    documents_embedded: int
    passages_embedded: int
    documents_reused: int = Field(description="Documents found indexed already: nothing embedded for them.")
    passages_reused: int
    sentence_vectors_kept: int = Field(
        default=0,
        description="Entries of the critic's passage-sentence vectors kept beside the index for later runs: one per "
        "passage with the packaged MiniLM (made while indexing), one per sentence with an embeddings server.",
    )
    sentence_vectors_reused: int = Field(
        default=0, description="Entries of passage-sentence vectors found kept beside the index: not made again."
    )


class CpuSummary(_Record):
    """Where this session's process spent its CPU (with Ray workers: the driver's only)."""

    process_seconds: float = Field(description="User + system CPU of the process so far (every thread, start-up too).")
    at_start_seconds: float = Field(
        description="The process's CPU when the conversations started: imports, the plan, opening the index and models."
    )
    model_seconds: dict[str, float] = Field(
        description="CPU in the process's ONNX model runs, by model (`embedder`, `injection`, `faithfulness`)."
    )


class RunSummary(_Record):
    """`summary.json`: the run's statistics over every session of the run directory."""

    status: RunStatus
    stopped_because: str | None
    planned: int
    finished: int
    remaining: int
    accepted: int
    rejected: int
    acceptance_rate: float | None
    errors: int = Field(description="Conversations that failed on server errors in this session; retried on resume.")
    by_persona: dict[str, GroupSummary]
    by_flow: dict[str, GroupSummary]
    rejection_reasons: list[ReasonCount]
    flags: dict[str, int]
    tokens: dict[str, TokenCounts]
    cost: CostEstimate | None
    wall_seconds: float = Field(description="Every session's wall time added up.")
    session_wall_seconds: float
    finished_this_session: int
    conversations_per_minute: float | None = Field(description="This session's pace.")
    requests: RequestCounts
    documents: DocumentCounts
    near_duplicates: NearDuplicateCounts
    index: IndexSummary | None = Field(
        default=None, description="This session's passage index (absent from older runs' files)."
    )
    cpu: CpuSummary | None = Field(default=None, description="This session's CPU (absent from older runs' files).")
