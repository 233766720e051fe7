"""Where a run's passage index lives; decided once the run directory is locked, before the session opens.

- `chroma_url` or `chroma_path` in the settings: that Chroma server or folder, as given.
- the run key `index` (`codi run --index`): `run` keeps a private index in `RUN_DIR/index` (removed with
  the run, shared with nothing); a folder is the root of a shared cache (entries `DIR/<key>/`).
- nothing set: the shared cache under `default_cache_root()`; a run without a directory keeps its index
  in memory, as it always did.

A shared entry (and a `chroma_path` folder) is held by one process at a time (Chroma's on-disk client is
not safe with two writers). A run that finds it held does not wait (the other run may last hours): it
indexes into an index of its own (`RUN_DIR/index`, or memory) and says so in the log, the manifest and
the summary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from codi_agents.config._settings import shown_url
from codi_agents.errors import ConfigError
from codi_agents.retrieval._cache import CacheEntry, claim_entry, claim_folder, default_cache_root, index_key
from codi_agents.retrieval._index_counts import IndexCounts
from codi_agents.rundir._layout import RunLayout
from codi_agents.rundir._models import IndexKind, IndexRecord, IndexSummary
from codi_agents.simulation._session import Session

logger = logging.getLogger("codi_agents.batch")

RUN_INDEX = "run"
"""`--index run`: a private index in the run directory, as before the shared cache."""


@dataclass
class IndexPlacement:
    """The index a run uses, and the cache entry it holds (released when the run ends)."""

    kind: IndexKind
    path: Path | None
    """The Chroma folder (None for a server or memory)."""
    key: str
    url: str | None = None
    note: str | None = None
    entry: CacheEntry | None = None

    def record(self) -> IndexRecord:
        """What the manifest records."""
        location = shown_url(self.url) if self.url else str(self.path) if self.path else None
        return IndexRecord(kind=self.kind, location=location, key=self.key, note=self.note)

    def summary(self, counts: IndexCounts) -> IndexSummary:
        """What the summary reports: the index and what this session embedded or reused."""
        return IndexSummary(**self.record().model_dump(), **vars(counts))

    def release(self) -> None:
        if self.entry is not None:
            self.entry.release()
            self.entry = None


def check_index_choice(choice: str | None, session: Session) -> None:
    """Refuse both `index` and `chroma_path`/`chroma_url`: the run could not honour both."""
    settings = session.settings
    if choice is not None and (settings.chroma_path or settings.chroma_url):
        given = "chroma_url" if settings.chroma_url else "chroma_path"
        raise ConfigError(f"Both index ({choice!r}) and {given} are set; keep one (index is where codi keeps it).")


def preview(choice: str | None, session: Session, layout: RunLayout | None) -> str:
    """Where the index would be, for `--dry-run` (nothing is created or locked)."""
    check_index_choice(choice, session)
    settings = session.settings
    if settings.chroma_url:
        return f"the Chroma server at {shown_url(settings.chroma_url)}"
    if settings.chroma_path:
        return f"the folder {settings.chroma_path}"
    if choice == RUN_INDEX or (choice is None and layout is None):
        return f"the run directory, {layout.index}" if layout is not None else "memory"
    root = Path(choice).expanduser() if choice else default_cache_root()
    return f"the shared cache, {root / index_key(session.index_parts)}"


def place_index(choice: str | None, session: Session, layout: RunLayout | None) -> IndexPlacement:
    """Choose the run's index, take its cache entry when it is shared, and point the session at it."""
    check_index_choice(choice, session)
    settings = session.settings
    parts = session.index_parts
    key = index_key(parts)
    if settings.chroma_url:
        return IndexPlacement("server", None, key, url=settings.chroma_url)
    if choice == RUN_INDEX or (choice is None and layout is None and not settings.chroma_path):
        return _own(session, layout, key)
    if settings.chroma_path:  # a folder the user named: held like a cache entry, as two writers would break it
        kind: IndexKind = "folder"
        claimed = claim_folder(Path(settings.chroma_path), parts)
    else:
        kind = "shared"
        claimed = claim_entry(Path(choice).expanduser() if choice else default_cache_root(), parts)
    if isinstance(claimed, CacheEntry):
        session.settings = settings.model_copy(update={"chroma_path": str(claimed.path)})
        return IndexPlacement(kind, claimed.path, key, entry=claimed)
    placement = _own(session, layout, key)
    placement.note = (
        f"{claimed.describe()}; this run indexes into {placement.path or 'memory'} instead, embedding its "
        "documents again. Runs one after the other share the cache; for two at once, give each its own --index."
    )
    logger.warning("passage index: %s", placement.note)
    return placement


def _own(session: Session, layout: RunLayout | None, key: str) -> IndexPlacement:
    """The run's own index: in its directory, or in memory without one."""
    if layout is None:
        return IndexPlacement("memory", None, key)
    session.settings = session.settings.model_copy(update={"chroma_path": str(layout.index)})
    return IndexPlacement("run", layout.index, key)
