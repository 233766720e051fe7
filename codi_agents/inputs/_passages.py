"""Passages: the chunks of a document that retrieval returns and answers are grounded in."""

from __future__ import annotations

from pydantic import BaseModel, Field

from codi_agents._security import injection_markers
from codi_agents.inputs._documents import Document

DEFAULT_CHUNK_SIZE = 800
"""Characters per passage: three or four passages fit a small model's context with room to answer."""
DEFAULT_CHUNK_OVERLAP = 100

PASSAGE_ID_SEPARATOR = "::"
CHUNKER_VERSION = 1
"""Bump when `chunk_document` cuts the same text differently: the shared passage index keys on it."""


class Passage(BaseModel):
    """One chunk of a document, with an id that is stable across runs: `<doc id>::<chunk index>`."""

    id: str = Field(description="`<document id>::<chunk index>`.")
    doc_id: str = Field(description="The document this passage belongs to.")
    index: int = Field(ge=0, description="Position of the chunk in the document, from 0.")
    text: str = Field(description="The passage text, verbatim from the cleaned document.")
    flags: list[str] = Field(
        default_factory=list,
        description="Marks found on the text, e.g. `possible_injection:<pattern>`.",
    )

    @property
    def suspicious(self) -> bool:
        """True when the passage holds instruction-like text aimed at a model."""
        return any(flag.startswith("possible_injection") for flag in self.flags)


def passage_id(doc_id: str, index: int) -> str:
    """The stable id of chunk `index` of document `doc_id`."""
    return f"{doc_id}{PASSAGE_ID_SEPARATOR}{index}"


def chunk_document(
    document: Document, *, chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
) -> list[Passage]:
    """Split a document into passages on paragraph, sentence and word boundaries."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 2),
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    chunks = _merge_short([chunk.strip() for chunk in splitter.split_text(document.text)], chunk_size // 4)
    return [
        Passage(
            id=passage_id(document.id, index),
            doc_id=document.id,
            index=index,
            text=text,
            flags=[f"possible_injection:{marker}" for marker in injection_markers(text)],
        )
        for index, text in enumerate(chunks)
    ]


def _merge_short(chunks: list[str], min_chars: int) -> list[str]:
    """Join chunks shorter than `min_chars` (headings, list stubs) to the chunk after them."""
    merged: list[str] = []
    pending = ""
    for chunk in chunks:
        if not chunk:
            continue
        text = f"{pending}\n{chunk}" if pending else chunk
        if len(text) < min_chars:
            pending = text
            continue
        merged.append(text)
        pending = ""
    if pending:
        if merged:
            merged[-1] = f"{merged[-1]}\n{pending}"
        else:
            merged.append(pending)
    return merged
