"""The shared index cache: a corpus is embedded once, whatever run, seed or persona mix reads it.

An entry is a Chroma folder, `ROOT/<key>/`, where the key hashes what decides every stored vector
and flag: the chunking (size, overlap, `CHUNKER_VERSION`, the splitter's version, the injection
patterns whose flags are stored), the embedding model (`vectors_identity`) and the trained
injection detector (`detector_digest`). Documents inside an entry are stored per (id, text), so the
entry serves every corpus made with those settings: a grown or edited corpus embeds only its new
texts, and two corpora that both number their documents 1, 2, 3 do not evict each other.

Chroma's on-disk client is not safe with two writing processes, so one process at a time holds an
entry (`claim_entry`, an OS lock released when the process dies in any way); another run finds it
taken and uses an index of its own instead (`batch._index_choice`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codi_agents._ids import stable_hash
from codi_agents._security import markers_digest
from codi_agents.errors import ConfigError
from codi_agents.inputs._passages import CHUNKER_VERSION
from codi_agents.rundir._files import write_atomic
from codi_agents.rundir._lock import FileLock, LockHolder, read_holder

INDEX_FORMAT = 2
"""Bump when the way passages and completion markers are stored changes (2: per-text document keys)."""
CACHE_ENV = "CODI_CACHE_DIR"
"""Environment variable naming codi's cache folder; index entries go in its `index/` subfolder."""
ENTRY_LOCK = "codi-index.lock"
ENTRY_INFO = "codi-index.json"
"""What an entry holds, for a person looking into the cache (the key's parts, readable)."""
CLAIM_SECONDS = 1.0
"""How long a run waits for an entry another process holds before it uses an index of its own."""


def default_cache_root() -> Path:
    """Where index entries go unless `--index` says otherwise: `$CODI_CACHE_DIR/index`, else the user's cache
    folder: `$XDG_CACHE_HOME/codi/index` or `~/.cache/codi/index` (Linux), `~/Library/Caches/codi/index` (macOS),
    `%LOCALAPPDATA%\\codi\\Cache\\index` (Windows)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser() / "index"
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Caches" / "codi"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "codi" / "Cache"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "codi"
    return base / "index"


def vectors_identity(embedding_function: Any) -> str:
    """What decides an embedding function's vectors: its `fingerprint()` when it has one, else Chroma's
    `name()` with a hash of its `get_config()`, else its class (give a custom function one of these)."""
    fingerprint = getattr(embedding_function, "fingerprint", None)
    if callable(fingerprint):
        return str(fingerprint())
    kind = type(embedding_function)
    label = f"{kind.__module__}.{kind.__qualname__}"
    with contextlib.suppress(Exception):  # Chroma's base class warns and returns NotImplemented
        name = embedding_function.name()
        if isinstance(name, str):
            label = name
    config: Any = None
    with contextlib.suppress(Exception):
        config = embedding_function.get_config()
    return f"{label}:{stable_hash(config if isinstance(config, dict) else None)}"


def index_parts(chunk_size: int, chunk_overlap: int, embedding_function: Any) -> dict[str, Any]:
    """Everything an index entry's content depends on, by part (hashed into its key, written beside it)."""
    from codi_agents.checkers.injection import detector_digest

    return {
        "format": INDEX_FORMAT,
        "chunking": {
            "chunk_size": chunk_size,
            "chunk_overlap": chunk_overlap,
            "chunker": CHUNKER_VERSION,
            "splitter": _version("langchain-text-splitters"),
            "injection_patterns": markers_digest(),
        },
        "embedding": vectors_identity(embedding_function),
        "injection_detector": detector_digest(),
    }


def index_key(parts: dict[str, Any]) -> str:
    """The key of an index entry (16 hex digits)."""
    return stable_hash(parts)


def collection_name(key: str) -> str:
    """The Chroma collection of the entry `key`: named by the key, so that one Chroma server holds many."""
    return f"codi_passages_{key}"


@dataclass
class CacheEntry:
    """A cache entry this process holds: its folder and its lock (release it when the run ends)."""

    path: Path
    key: str
    lock: FileLock

    def release(self) -> None:
        self.lock.release()


@dataclass(frozen=True)
class EntryTaken:
    """The entry is held by another process (named when it wrote its name)."""

    path: Path
    holder: LockHolder | None

    def describe(self) -> str:
        who = self.holder.describe() if self.holder is not None else "a process that has not written its name yet"
        return f"{self.path} is in use by another run ({who})"


def claim_entry(root: Path, parts: dict[str, Any], *, wait_seconds: float = CLAIM_SECONDS) -> CacheEntry | EntryTaken:
    """Take the entry of `parts` under `root` (created if new) for this process, or say who holds it."""
    return claim_folder(root / index_key(parts), parts, wait_seconds=wait_seconds)


def claim_folder(path: Path, parts: dict[str, Any], *, wait_seconds: float = CLAIM_SECONDS) -> CacheEntry | EntryTaken:
    """Take an index folder (a cache entry, or a `chroma_path`) for this process, or say who holds it."""
    key = index_key(parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        message = f"Cannot create the index folder {path}: {error}. Choose another with --index."
        raise ConfigError(message) from error
    lock = FileLock(path / ENTRY_LOCK)
    if lock.try_acquire(wait_seconds) is None:
        return EntryTaken(path, read_holder(lock.path))
    try:
        info = path / ENTRY_INFO
        if not info.exists():
            write_atomic(info, (json.dumps({"key": key, **parts}, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    except BaseException:
        lock.release()
        raise
    return CacheEntry(path, key, lock)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
