"""Near-duplicate control: MinHash over word shingles of whole conversations and of user questions.

Every accepted conversation is compared with the accepted conversations before it (LSH, so each
check is near constant time). A conversation whose text is a near-duplicate of an earlier one is
flagged `near_duplicate`; one that repeats a user question of an earlier conversation is flagged
`near_duplicate_question`. Which of two near-duplicates is flagged depends on which finished
first, so under concurrency it can differ between runs; the count does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from datasketch import MinHash, MinHashLSH

from codi_agents._record import Conversation
from codi_agents.config._run_config import DedupConfig
from codi_agents.errors import ConfigError

CONVERSATION_FLAG = "near_duplicate"
QUESTION_FLAG = "near_duplicate_question"
MIN_QUESTION_WORDS = 4
"""Shorter questions ("And for students?") repeat by nature and are not compared."""
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DedupResult:
    """What the check found for one conversation."""

    flags: tuple[str, ...]
    duplicate_of: str | None = None
    """The id of the earlier conversation it resembles most directly, if any."""

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


class NearDuplicates:
    """Flags near-duplicate conversations and questions against the ones seen before."""

    def __init__(self, config: DedupConfig) -> None:
        self.config = config
        try:
            self._conversations = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
            self._questions = MinHashLSH(threshold=config.question_threshold, num_perm=config.num_perm)
        except ValueError as error:
            raise ConfigError(
                f"[dedup] num_perm = {config.num_perm} is too few permutations for thresholds {config.threshold} "
                f"and {config.question_threshold} ({error}); raise num_perm or lower the thresholds."
            ) from error
        first = MinHash(num_perm=config.num_perm)  # its permutations serve every signature (made once, not per text)
        self._permutations, self._scheme = first.permutations, first.scheme
        self._question_owner: dict[str, str] = {}
        self.flagged: dict[str, int] = {CONVERSATION_FLAG: 0, QUESTION_FLAG: 0}

    def check(self, conversation: Conversation) -> DedupResult:
        """Compare an accepted conversation with the ones before it, then remember it."""
        return self.add(conversation.id, _texts(conversation))

    def add(self, ident: str, texts: tuple[str, Sequence[str]]) -> DedupResult:
        """`texts`: the whole conversation and its user questions. Checks, records and returns the flags."""
        if not self.config.enabled:
            return DedupResult(flags=())
        whole, questions = texts
        flags: list[str] = []
        duplicate_of = None
        signature = self._signature(_shingles(whole, self.config.shingle_words))
        if signature is not None:
            matches = self._conversations.query(signature)
            if matches:
                flags.append(CONVERSATION_FLAG)
                duplicate_of = sorted(matches)[0]
            if ident not in self._conversations:
                self._conversations.insert(ident, signature)
        repeated = None
        for number, question in enumerate(questions):
            if len(_WORD.findall(question)) < MIN_QUESTION_WORDS:
                continue
            question_signature = self._signature(_shingles(question, self.config.question_shingle_words))
            if question_signature is None:
                continue
            owners = {self._question_owner[key] for key in self._questions.query(question_signature)} - {ident}
            if owners and repeated is None:
                repeated = sorted(owners)[0]
            key = f"{ident}#{number}"
            if key not in self._question_owner:
                self._questions.insert(key, question_signature)
                self._question_owner[key] = ident
        if repeated is not None:
            flags.append(QUESTION_FLAG)
            duplicate_of = duplicate_of or repeated
        for flag in flags:
            self.flagged[flag] += 1
        return DedupResult(flags=tuple(flags), duplicate_of=duplicate_of)

    def should_drop(self, result: DedupResult) -> bool:
        """True when the config says to drop conversations with these flags."""
        drop = self.config.drop
        if drop == "conversations":
            return CONVERSATION_FLAG in result.flags
        return drop == "questions" and result.flagged

    def _signature(self, shingles: set[bytes]) -> MinHash | None:
        if not shingles:
            return None
        signature = MinHash(num_perm=self.config.num_perm, permutations=self._permutations, scheme=self._scheme)
        signature.update_batch(shingles)
        return signature


def texts_of_record(record: dict[str, Any]) -> tuple[str, list[str]]:
    """The texts compared, from a record read back from accepted.jsonl (a dict, not a model)."""
    turns = record.get("turns") or []
    pairs = [(str(turn.get("role")), str(turn.get("content", ""))) for turn in turns if isinstance(turn, dict)]
    return _join(pairs), [content for role, content in pairs if role == "user"]


def _texts(conversation: Conversation) -> tuple[str, list[str]]:
    pairs = [(turn.role, turn.content) for turn in conversation.turns]
    return _join(pairs), [content for role, content in pairs if role == "user"]


def _join(pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(content for _, content in pairs)


def _shingles(text: str, size: int) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[start : start + size]).encode() for start in range(len(words) - size + 1)}
