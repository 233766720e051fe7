"""A corpus read whole (eagerly): a JSONL file, a folder of documents, a glob, or documents given in code.

JSONL records are `{id, title, text}` (Doc2Dial/QuAC's `{doc_id, title, text}` too). Files are read
with `read_document_file` (HTML through a real parser, PDF with pypdf, size limits, binary refusal,
bad UTF-8 replaced and counted). Anything unreadable is skipped with a reason that names it, never
fatal; a text seen before under another id is an exact duplicate and is kept once.
A run in one process reads JSONL files, folders and globs with `read_corpus`; the streamed sources
(`corpora._files`, `corpora._tables`) apply the same record rules (`_Reader`) one record at a time.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codi_agents._ids import stable_hash
from codi_agents.errors import DocumentError
from codi_agents.inputs._documents import SUPPORTED_SUFFIXES, Document, OversizePolicy, clean_text, read_document_file

logger = logging.getLogger("codi_agents.batch")

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
JSON_OVERHEAD_FACTOR = 6
"""A JSON line may spell a document's text with escapes up to six bytes per character (\\uXXXX)."""
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Skipped:
    """A file or record that was not used, and why."""

    source: str
    reason: str


@dataclass
class Corpus:
    """The documents of a run, in a stable order, and what was left out."""

    source: str
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    """Exact duplicates: the id left out -> the id of the same text that was kept."""

    @property
    def truncated(self) -> list[str]:
        """Documents cut at the size limit (`max_document_bytes`), by source."""
        return [doc.source or doc.id for doc in self.documents if "truncated_at_bytes" in doc.metadata]

    @property
    def replaced_bytes(self) -> dict[str, int]:
        """Documents whose invalid UTF-8 was decoded with replacement: source -> bytes replaced."""
        return {
            doc.source or doc.id: int(doc.metadata["decoding_errors"])
            for doc in self.documents
            if doc.metadata.get("decoding_errors")
        }

    def fingerprint(self) -> str:
        """A hash of every document's id and text: a changed corpus changes it."""
        return stable_hash([[document.id, document.fingerprint()] for document in self.documents])


def read_corpus(
    spec: str | Path | Sequence[Document],
    *,
    max_bytes: int,
    oversize: OversizePolicy = "truncate",
) -> Corpus:
    """Read every document of `spec`; raise `DocumentError` only when nothing usable is left."""
    if not isinstance(spec, str | Path):
        reader = _Reader(Corpus(source=f"{len(spec)} documents given in code"), max_bytes, oversize)
        for document in spec:
            reader.add(document)
        return reader.finish()
    path = Path(spec)
    reader = _Reader(Corpus(source=_display(str(spec))), max_bytes, oversize)
    if path.is_dir():
        files = sorted(item for item in path.rglob("*") if item.is_file() and not _hidden(item, path))
        for item in files:
            reader.read_file(item, item.relative_to(path).as_posix())
    elif path.is_file():
        reader.read_file(path, path.name)
    elif _GLOB_CHARACTERS & set(str(spec)):
        files = [match for match in sorted(Path(found) for found in glob.glob(str(spec), recursive=True))]
        files = [match for match in files if match.is_file()]
        if not files:
            raise DocumentError(f"No files match {spec!r}. Check the pattern (quote it so the shell leaves it alone).")
        for item in files:
            reader.read_file(item, item.as_posix())
    else:
        raise DocumentError(f"Corpus not found: {spec}. Give a .jsonl file, a folder of documents or a glob.")
    return reader.finish()


class _Reader:
    """Builds a `Corpus`: reads files and records, keeps the first of each id and of each text."""

    def __init__(self, corpus: Corpus, max_bytes: int, oversize: OversizePolicy) -> None:
        self.corpus = corpus
        self.max_bytes = max_bytes
        self.oversize = oversize
        self._ids: dict[str, str] = {}
        self._texts: dict[str, str] = {}

    def read_file(self, path: Path, name: str) -> None:
        """Add the documents of one file (a JSONL file holds many), or skip it with the reason."""
        suffix = path.suffix.lower()
        if suffix in JSONL_SUFFIXES:
            self.read_jsonl(path)
            return
        display = _display(str(path))
        if suffix not in SUPPORTED_SUFFIXES:
            self.skip(display, f"unsupported file type {suffix or '(none)'}; use .txt, .md, .html, .pdf or .jsonl")
            return
        try:
            document = read_document_file(path, max_bytes=self.max_bytes, oversize=self.oversize)
        except DocumentError as error:
            self.skip(display, str(error).replace(str(path), display))
            return
        except Exception as error:  # a parser's own bug must not stop the run: name the file and go on
            self.skip(display, f"cannot be read: {type(error).__name__}: {error}")
            return
        if "truncated_at_bytes" in document.metadata:
            logger.warning("%s: text cut at the limit of %s bytes (max_document_bytes)", display, f"{self.max_bytes:,}")
        title = document.title if document.title != path.stem else Path(name).stem
        self.add(document.model_copy(update={"id": _display(name), "title": _display(title), "source": display}))

    def read_jsonl(self, path: Path) -> None:
        """Add each record of a JSONL file; a record longer than the size limit is skipped unread."""
        display = _display(str(path))
        line_limit = self.max_bytes * JSON_OVERHEAD_FACTOR + 65_536
        try:
            handle = path.open("rb")
        except OSError as error:
            self.skip(display, f"cannot be read: {error.strerror or error}")
            return
        with handle:
            number = 0
            while raw := handle.readline(line_limit):
                number += 1
                where = f"{display}:{number}"
                if not raw.endswith(b"\n") and len(raw) == line_limit:
                    while (rest := handle.readline(line_limit)) and not rest.endswith(b"\n"):
                        pass
                    self.skip(where, f"record is larger than the limit of {self.max_bytes:,} bytes of text")
                elif raw.strip():
                    document = self.record(raw, where)
                    if document is not None:
                        self.add(document)

    def record(self, raw: bytes, where: str) -> Document | None:
        """One JSONL record as a document, or None (skipped, with the reason)."""
        line = raw.decode("utf-8", errors="replace")
        decoding_errors = line.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
        try:
            record: Any = json.loads(line)
        except json.JSONDecodeError as error:
            self.skip(where, f"not valid JSON ({error.msg} at column {error.colno})")
            return None
        return self.fields(record, where, decoding_errors=decoding_errors)

    def fields(
        self, record: Any, where: str, *, decoding_errors: int = 0, source_format: str = "jsonl"
    ) -> Document | None:
        """A parsed record (`{id or doc_id, title, text}`) as a document, or None (skipped, with the reason)."""
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            self.skip(where, "not a record with a `text` string; each line must be {id, title, text}")
            return None
        text: str = record["text"]
        ident = record.get("id", record.get("doc_id"))
        ident = where if ident is None or not str(ident).strip() else str(ident)
        metadata: dict[str, Any] = {"format": source_format}
        encoded = text.encode("utf-8", errors="replace")
        if len(encoded) > self.max_bytes:
            if self.oversize == "skip":
                self.skip(where, f"text has {len(encoded):,} bytes, over the limit of {self.max_bytes:,}")
                return None
            text = encoded[: self.max_bytes].decode("utf-8", errors="ignore")
            metadata["truncated_at_bytes"] = self.max_bytes
            logger.warning("%s: text cut at the limit of %s bytes (max_document_bytes)", where, f"{self.max_bytes:,}")
        if decoding_errors:
            metadata["decoding_errors"] = decoding_errors
        title = record.get("title")
        return Document(
            id=ident, title="" if title is None else str(title), text=clean_text(text), source=where, metadata=metadata
        )

    def add(self, document: Document) -> None:
        """Keep `document` unless it is empty, its id was seen, or its exact text was seen."""
        where = document.source or document.id
        if not clean_text(document.text):
            self.skip(where, "the text is empty")
            return
        if document.id in self._ids:
            self.skip(where, f"duplicate id {document.id!r} (first at {self._ids[document.id]})")
            return
        fingerprint = document.fingerprint()
        if fingerprint in self._texts:
            self.corpus.duplicates[document.id] = self._texts[fingerprint]
            logger.info("%s: same text as document %r, which is used instead", where, self._texts[fingerprint])
            return
        self._ids[document.id] = where
        self._texts[fingerprint] = document.id
        self.corpus.documents.append(document)

    def skip(self, source: str, reason: str) -> None:
        """Leave `source` out, with a warning that names it."""
        logger.warning("skipped %s: %s", source, reason)
        self.corpus.skipped.append(Skipped(source=source, reason=reason))

    def finish(self) -> Corpus:
        """The corpus; an error when nothing usable is in it."""
        corpus = self.corpus
        if not corpus.documents:
            reasons = "; ".join(f"{item.source}: {item.reason}" for item in corpus.skipped[:5]) or "no documents"
            raise DocumentError(f"No readable documents in {corpus.source}: {reasons}.")
        return corpus


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _display(text: str) -> str:
    """`text` safe to write as UTF-8: undecodable bytes of file names become U+FFFD."""
    if not any("\udc80" <= character <= "\udcff" for character in text):
        return text
    return os.fsencode(text).decode("utf-8", errors="replace")
