"""What becomes of a conversation once it ends: finished or failed, checked for near-duplicates, written, counted.

A finished conversation is checked against the run's near-duplicates (flagged, or moved to the
rejected ones under a drop policy), appended durably to `accepted.jsonl` or `rejected.jsonl` and
counted. A conversation whose requests failed after their retries goes to `errors.jsonl`, for a
resume to redo. Every line is redacted before it reaches the disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from codi_agents._record import Conversation
from codi_agents._security import redact
from codi_agents.batch._dedup import NearDuplicates
from codi_agents.batch._plan import Planned
from codi_agents.batch._prepare import PreparedRun
from codi_agents.batch._summary import Tally
from codi_agents.config._run_config import DedupConfig
from codi_agents.errors import RunError
from codi_agents.rundir._layout import Stream
from codi_agents.rundir._models import NearDuplicateCounts
from codi_agents.rundir._writer import RecordWriter

logger = logging.getLogger("codi_agents.batch")


class Outcomes:
    """The run's record of ended conversations: the files, the tally, the near-duplicate index."""

    def __init__(
        self,
        *,
        writer: RecordWriter | None,
        tally: Tally,
        dedup: NearDuplicates,
        done: set[str],
        dropped: int,
        secrets: Sequence[str],
        stop: Callable[[BaseException], None],
    ) -> None:
        """`writer` None: nothing is written (a run without a directory). `stop` ends the run (a full disk)."""
        self.writer = writer
        self.tally = tally
        self.dedup = dedup
        self.done = done
        self.dropped = dropped
        """Near-duplicates moved to the rejected ones, earlier sessions included."""
        self.errors = 0
        """Conversations that failed in this session."""
        self.secrets = list(secrets)
        self._stop = stop

    @classmethod
    def of_run(
        cls,
        prepared: PreparedRun,
        dedup: NearDuplicates,
        *,
        secrets: Sequence[str],
        stop: Callable[[BaseException], None],
    ) -> Outcomes:
        """The outcomes of a prepared run: appended to its directory (if any), counted on from its read-back."""
        layout = prepared.layout
        return cls(
            writer=RecordWriter(layout.root) if layout is not None else None,
            tally=prepared.tally,
            dedup=dedup,
            done=prepared.done,
            dropped=prepared.dropped,
            secrets=secrets,
            stop=stop,
        )

    async def finished(self, conversation: Conversation) -> None:
        """Check, write and count a finished conversation; it is on disk when this returns."""
        if conversation.accepted:
            result = self.dedup.check(conversation)
            if result.flagged:
                conversation.flags.extend(flag for flag in result.flags if flag not in conversation.flags)
                if self.dedup.should_drop(result):
                    conversation.accepted = False
                    conversation.flags.append("dropped")
                    conversation.rejection_reason = f"near-duplicate of conversation {result.duplicate_of}; dropped"
                    self.dropped += 1
        self.done.add(conversation.id)
        self.tally.add_conversation(conversation)
        await self._append("accepted" if conversation.accepted else "rejected", conversation.model_dump_json())

    async def failed(self, item: Planned[Any], error: BaseException, *, name: str | None = None) -> None:
        """Log a conversation that could not finish to `errors.jsonl`; a resume redoes it. `name`: the error's
        type when it was raised in a worker process (`error` then carries its message)."""
        self.errors += 1
        message = redact(str(error), self.secrets)
        logger.warning("conversation %s (%s) failed: %s", item.id, item.document.id, message)
        record = {
            "id": item.id,
            "number": item.number,
            "doc_id": item.document.id,
            "persona": item.persona.name,
            "flow": item.flow.name,
            "seed": item.seed,
            "error": name or type(error).__name__,
            "message": message,
            "at": datetime.now(UTC).isoformat(),
        }
        await self._append("errors", json.dumps(record, ensure_ascii=False))

    def near_duplicates(self, config: DedupConfig) -> NearDuplicateCounts:
        """Near-duplicates flagged and dropped over the run, under `config`'s policy."""
        flags = self.dedup.flagged
        return NearDuplicateCounts(
            flagged=sum(self.tally.flags[flag] for flag in flags),
            by_flag={flag: self.tally.flags[flag] for flag in flags},
            dropped=self.dropped,
            policy=config.drop,
            threshold=config.threshold,
        )

    def close(self) -> None:
        """Write what is queued and close the files."""
        if self.writer is not None:
            self.writer.close()

    async def _append(self, stream: Stream, line: str) -> None:
        if self.writer is None:
            return
        written = asyncio.wrap_future(self.writer.append(stream, redact(line, self.secrets)))
        try:
            await asyncio.shield(written)
        except OSError as error:
            self._stop(
                RunError(f"Cannot write to {self.writer.directory}: {error}. Free some space, then resume the run.")
            )


def raise_without_secrets(error: BaseException, secrets: Sequence[str]) -> NoReturn:
    """Raise `error`; a copy without its cause when its message quotes a secret (a server that repeats the
    key it was sent), so that no traceback shows the key."""
    message = redact(str(error), secrets)
    if message == str(error):
        raise error
    try:
        clean = type(error)(message)
    except Exception:
        clean = RunError(message)
    raise clean from None
