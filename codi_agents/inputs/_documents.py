"""Documents: what a conversation is grounded in, read from text, Markdown, HTML or PDF.

Documents are untrusted input. Reading never loads more than a size limit into memory,
refuses binary files, decodes bad UTF-8 with replacement (and records it), and turns every
failure into a `DocumentError` that names the file and says what to do.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from codi_agents.errors import DocumentError

DEFAULT_MAX_BYTES = 5_000_000
"""Documents larger than this are truncated or skipped (see `OversizePolicy`)."""

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst", ".text"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
PDF_SUFFIXES = frozenset({".pdf"})
DOCUMENT_NOTES = ("truncated_at_bytes", "decoding_errors")
"""Metadata keys that say reading changed a document; conversations about it keep them (`doc_notes`)."""
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES

OversizePolicy = Literal["truncate", "skip"]

_BINARY_SNIFF_BYTES = 8192
_MAX_PATH_LIKE_CHARS = 1024


class Document(BaseModel):
    """One document: a stable id, a title and clean text."""

    id: str = Field(description="Stable identifier, used in passage ids and conversation ids.")
    title: str = Field(default="", description="Human-readable title; may be empty.")
    text: str = Field(description="Clean plain text.")
    source: str | None = Field(default=None, description="Where the text came from (a path), if anywhere.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Facts about reading: truncated, decoding_errors, format.",
    )

    def fingerprint(self) -> str:
        """A hash of the text, used to index exact duplicates once."""
        return text_fingerprint(self.text)


@lru_cache(maxsize=256)
def text_fingerprint(text: str) -> str:
    """`Document.fingerprint` of a document with this text (remembered: every search names its document; the
    cache holds whole texts, so it keeps only about as many as a run has conversations in flight)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def clean_text(text: str) -> str:
    """Normalise Unicode and whitespace without changing the words."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\x00", "")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def text_document(text: str, *, doc_id: str | None = None, title: str = "") -> Document:
    """Wrap raw text as a `Document`; the id defaults to a hash of the text."""
    cleaned = clean_text(text)
    if not cleaned:
        raise DocumentError("The document is empty: there is no text to ground a conversation in.")
    ident = doc_id or "text-" + hashlib.sha256(cleaned.encode("utf-8")).hexdigest()[:12]
    return Document(id=ident, title=title or _first_line_title(cleaned), text=cleaned, metadata={"format": "text"})


def load_document(
    source: Document | str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    oversize: OversizePolicy = "truncate",
) -> Document:
    """Return a `Document` from a `Document`, a file path, or raw text.

    A string is read as a path when it names an existing file or looks like one (a single
    line ending in a supported suffix or holding a path separator); otherwise it is raw text.
    """
    if isinstance(source, Document):
        if not clean_text(source.text):
            raise DocumentError(f"Document {source.id!r} is empty: give it some text.")
        return source
    if isinstance(source, Path) or _looks_like_path(source):
        return read_document_file(Path(source), max_bytes=max_bytes, oversize=oversize)
    return text_document(source)


def read_document_file(
    path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, oversize: OversizePolicy = "truncate"
) -> Document:
    """Read one file into a `Document`, by its suffix; `.txt` is assumed for unknown suffixes."""
    if not path.exists():
        raise DocumentError(f"Document file not found: {path}. Check the path.")
    if not path.is_file():
        raise DocumentError(f"Not a regular file: {path}. Give a file, not a folder.")
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(f"Document file is empty: {path}.")
    truncated = size > max_bytes
    if truncated and (oversize == "skip" or suffix in PDF_SUFFIXES):
        raise DocumentError(
            f"Document file is too large: {path} has {size:,} bytes, over the limit of {max_bytes:,}. "
            "Raise the limit (max_document_bytes) or split the file."
        )
    if suffix in PDF_SUFFIXES:
        text, title, truncated = _read_pdf(path, max_bytes)
        if truncated and oversize == "skip":
            raise DocumentError(
                f"Document file is too large: the text of {path} runs over the limit of {max_bytes:,} bytes. "
                "Raise the limit (max_document_bytes) or split the file."
            )
        decoding_errors = 0
    else:
        raw = _read_head(path, max_bytes)
        if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
            raise DocumentError(f"Document file looks binary, not text: {path}. Give a .txt, .md, .html or .pdf file.")
        decoded = raw.decode("utf-8", errors="replace")
        decoding_errors = decoded.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
        if suffix in HTML_SUFFIXES:
            text, title = html_to_text(decoded)
        else:
            text, title = decoded, ""
    text = clean_text(text)
    if not text:
        raise DocumentError(f"Document file has no text after cleaning: {path}.")
    metadata: dict[str, Any] = {"format": _format_name(suffix), "bytes": size}
    if truncated:
        metadata["truncated_at_bytes"] = max_bytes
    if decoding_errors:
        metadata["decoding_errors"] = decoding_errors
    return Document(
        id=path.stem or path.name,
        title=title or _first_line_title(text) or path.stem,
        text=text,
        source=str(path),
        metadata=metadata,
    )


def html_to_text(html: str) -> tuple[str, str]:
    """Convert HTML to plain text with a real parser; return (text, title)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer", "head", "svg", "form"]):
        tag.decompose()
    if not title and (heading := soup.find(["h1", "h2"])):
        title = heading.get_text(" ", strip=True)
    return soup.get_text("\n", strip=True), title


def _read_pdf(path: Path, max_bytes: int) -> tuple[str, str, bool]:
    """(text, title, truncated): pages are read until their text reaches `max_bytes`, so a small file
    whose compressed streams expand to gigabytes of text is never held whole."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    pages: list[str] = []
    size = 0
    truncated = False
    try:
        reader = PdfReader(path)
        for page in reader.pages:
            text = page.extract_text() or ""
            encoded = text.encode("utf-8", errors="replace")
            if size + len(encoded) > max_bytes:
                pages.append(encoded[: max_bytes - size].decode("utf-8", errors="ignore"))
                truncated = True
                break
            size += len(encoded)
            pages.append(text)
        title = str(reader.metadata.title) if reader.metadata and reader.metadata.title else ""
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as error:
        raise DocumentError(f"Cannot read PDF {path}: {error}. Is the file a valid, unencrypted PDF?") from error
    return "\n\n".join(pages), title, truncated


def _read_head(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(max_bytes)
    except OSError as error:
        raise DocumentError(f"Cannot read {path}: {error.strerror or error}.") from error


def _looks_like_path(text: str) -> bool:
    if "\n" in text or len(text) > _MAX_PATH_LIKE_CHARS:
        return False
    if Path(text).is_file():
        return True
    return Path(text).suffix.lower() in SUPPORTED_SUFFIXES or ("/" in text.strip() and " " not in text.strip())


def _first_line_title(text: str) -> str:
    first = text.split("\n", 1)[0].strip().lstrip("#").strip()
    return first[:120] if len(first) <= 120 else ""


def _format_name(suffix: str) -> str:
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    return "markdown" if suffix in {".md", ".markdown"} else "text"
