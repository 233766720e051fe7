"""What a passage index did in one process, counted for the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class IndexCounts:
    """What an index did in this process: documents (and their passages) embedded, or found indexed already."""

    documents_embedded: int = 0
    passages_embedded: int = 0
    documents_reused: int = 0
    passages_reused: int = 0
    sentence_vectors_kept: int = 0
    sentence_vectors_reused: int = 0

    def __add__(self, other: IndexCounts) -> IndexCounts:
        return IndexCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def note(self, *, added: bool, passages: int) -> None:
        """Count one document: embedded now (`added`), or found indexed."""
        if added:
            self.documents_embedded += 1
            self.passages_embedded += passages
        else:
            self.documents_reused += 1
            self.passages_reused += passages
