"""Corpora read as streams: plan from references, read only the documents a worker is given.

- `open_source(spec, ...)`: JSONL, folders and globs of documents, Parquet shards, saved Hugging Face datasets.
- `CorpusSource.scan()` -> `ScannedCorpus` (refs in a stable order, skips, duplicates, fingerprint).
- `CorpusSource.read(refs)` -> the documents.
"""

from codi_agents.corpora._files import FileSource
from codi_agents.corpora._open import CorpusFormat, open_source
from codi_agents.corpora._source import CorpusSource, DocRef, ScannedCorpus
from codi_agents.corpora._tables import HuggingFaceSource, ParquetSource

__all__ = [
    "CorpusFormat",
    "CorpusSource",
    "DocRef",
    "FileSource",
    "HuggingFaceSource",
    "ParquetSource",
    "ScannedCorpus",
    "open_source",
]
