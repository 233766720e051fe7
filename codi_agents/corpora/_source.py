"""A streamed corpus: one pass to plan from references, then workers read only the documents they are given.

`CorpusSource.scan()` reads every record once, in a stable order (shards sorted by path, then row or
byte offset), and keeps only a small `DocRef` per usable document: its id, its shard and its position.
Texts are dropped as soon as they are hashed, so planning a million documents holds references and
hashes, never texts. `CorpusSource.read(refs)` later reads just those documents, applying the same
rules as the scan (the record rules of `corpora._eager`).

Duplicates while streaming: the first document of each id and of each text is kept, as in
`read_corpus`. Texts are compared by `Document.fingerprint()` (64 bits of SHA-256, the digest the
eager reader uses), kept as Python ints in a dict to the ordinal of the kept document: about 100 bytes
per distinct text (~100 MB per million), and ids in a dict of the same size. A collision of two
different texts at 64 bits has odds of ~3e-8 in a million documents.

The fingerprint is computed in the same pass and equals `Corpus.fingerprint()` for the same documents
(a SHA-256 over the JSON list of `[id, text fingerprint]`, fed one item at a time), so a run planned
from a stream and one planned from an eagerly read corpus agree.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from codi_agents.corpora._eager import Corpus, Skipped, _Reader
from codi_agents.errors import DocumentError
from codi_agents.inputs._documents import Document, OversizePolicy

logger = logging.getLogger("codi_agents.corpora")

FINGERPRINT_LENGTH = 16
"""Hex digits of the corpus fingerprint, as `stable_hash` writes them."""


@dataclass(frozen=True, slots=True)
class DocRef:
    """Where one usable document lives: enough to read it again, small enough to hold a million."""

    id: str
    shard: int
    """Index into `CorpusSource.shards` (a file, or 0 for a dataset)."""
    position: int
    """Row number in a table, byte offset of the line in a JSONL file, 0 for a whole file."""
    line: int = 0
    """The record's 1-based line number in a JSONL file (it names the record); 0 otherwise."""


@dataclass(frozen=True, slots=True)
class Record:
    """One record met while scanning: where it is, how it is named, and its document (None: skipped)."""

    position: int
    line: int
    where: str
    document: Document | None


@dataclass
class ScannedCorpus:
    """What a scan found: references to the usable documents in order, and what was left out."""

    source: str
    refs: list[DocRef] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    """Exact duplicates: the id left out -> the id of the same text that was kept."""
    truncated: list[str] = field(default_factory=list)
    """Documents cut at the size limit (`max_document_bytes`), by source."""
    replaced_bytes: dict[str, int] = field(default_factory=dict)
    """Documents whose invalid UTF-8 was decoded with replacement: source -> bytes replaced."""
    fingerprint: str = ""
    """Equal to `Corpus.fingerprint()` of the same documents."""


class CorpusSource(ABC):
    """A corpus read in a stream: `scan()` plans, `read(refs)` fetches. Picklable, so workers can read."""

    def __init__(self, source: str, *, max_bytes: int, oversize: OversizePolicy = "truncate") -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.oversize: OversizePolicy = oversize
        self._reader = _Reader(Corpus(source=source), max_bytes, oversize)

    @property
    @abstractmethod
    def shards(self) -> Sequence[str]:
        """The shards (files, or one dataset) in the stable order the scan follows."""

    @abstractmethod
    def records(self, shard: int) -> Iterator[Record]:
        """Every record of one shard, in order; skips are reported through `self.skip`."""

    @abstractmethod
    def read_shard(self, shard: int, refs: Sequence[DocRef]) -> list[Record]:
        """The records at `refs` (all in `shard`), in the order given."""

    def skip(self, where: str, reason: str) -> None:
        """Leave a record out, with the reason (collected by `scan`)."""
        self._reader.skip(where, reason)

    def document(self, record: dict[str, Any], where: str, source_format: str) -> Document | None:
        """A table row as a document under the JSONL record rules, or None (skipped, with the reason)."""
        return self._reader.fields(record, where, source_format=source_format)

    def scan(self) -> ScannedCorpus:
        """Read every record once and plan; raise `DocumentError` only when nothing usable is left."""
        result = ScannedCorpus(source=self.source)
        ids: dict[str, int] = {}
        texts: dict[int, int] = {}
        digest = hashlib.sha256(b"[")
        for shard in range(len(self.shards)):
            for record in self.records(shard):
                self._collect_skips(result)
                document = record.document
                if document is None:
                    continue
                if not document.text:  # the record rules cleaned it already (`clean_text`)
                    result.skipped.append(_skipped(record.where, "the text is empty"))
                    continue
                if document.id in ids:
                    first = self.where(result.refs[ids[document.id]])
                    result.skipped.append(_skipped(record.where, f"duplicate id {document.id!r} (first at {first})"))
                    continue
                fingerprint = document.fingerprint()
                text_key = int(fingerprint, 16)
                if text_key in texts:
                    kept = result.refs[texts[text_key]].id
                    result.duplicates[document.id] = kept
                    logger.info("%s: same text as document %r, which is used instead", record.where, kept)
                    continue
                ids[document.id] = texts[text_key] = len(result.refs)
                if result.refs:
                    digest.update(b",")
                digest.update(json.dumps([document.id, fingerprint], separators=(",", ":")).encode("utf-8"))
                result.refs.append(DocRef(document.id, shard, record.position, record.line))
                _note_reading_facts(result, document, record.where)
        self._collect_skips(result)
        digest.update(b"]")
        result.fingerprint = digest.hexdigest()[:FINGERPRINT_LENGTH]
        if not result.refs:
            reasons = "; ".join(f"{item.source}: {item.reason}" for item in result.skipped[:5]) or "no documents"
            raise DocumentError(f"No readable documents in {self.source}: {reasons}.")
        return result

    def read(self, refs: Iterable[DocRef]) -> list[Document]:
        """The documents at `refs`, in the order given; an error when one no longer reads as planned."""
        wanted = list(refs)
        by_shard: dict[int, list[int]] = {}
        for number, ref in enumerate(wanted):
            by_shard.setdefault(ref.shard, []).append(number)
        found: list[Document | None] = [None] * len(wanted)
        for shard, numbers in by_shard.items():
            records = self.read_shard(shard, [wanted[number] for number in numbers])
            for number, record in zip(numbers, records, strict=True):
                document = record.document
                if document is None or document.id != wanted[number].id:
                    raise DocumentError(
                        f"{record.where} no longer holds document {wanted[number].id!r}: the corpus changed after "
                        "the run was planned. Restore it, or start a new run directory."
                    )
                found[number] = document
        self._reader.corpus.skipped.clear()
        return [document for document in found if document is not None]

    def where(self, ref: DocRef) -> str:
        """How a reference is named in messages (the same name its document's `source` has)."""
        return self.name(ref.shard, ref.position, ref.line)

    @abstractmethod
    def name(self, shard: int, position: int, line: int) -> str:
        """The name of the record at this position."""

    def _collect_skips(self, result: ScannedCorpus) -> None:
        if self._reader.corpus.skipped:
            result.skipped.extend(self._reader.corpus.skipped)
            self._reader.corpus.skipped.clear()

    def __getstate__(self) -> dict[str, Any]:
        """Open handles are not pickled; a worker reopens them on first read."""
        state = self.__dict__.copy()
        state.update({key: None for key in state if key.startswith("_handle")})
        return state


def _skipped(where: str, reason: str) -> Skipped:
    logger.warning("skipped %s: %s", where, reason)
    return Skipped(source=where, reason=reason)


def _note_reading_facts(result: ScannedCorpus, document: Document, where: str) -> None:
    if "truncated_at_bytes" in document.metadata:
        result.truncated.append(document.source or where)
    if document.metadata.get("decoding_errors"):
        result.replaced_bytes[document.source or where] = int(document.metadata["decoding_errors"])
