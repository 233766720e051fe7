"""An index is searched with the embedding model that built it, or a clear error says which one did.

Vectors of two models cannot be compared: a persisted index (a run's `index/` folder, a Chroma
server) built with one embedding model and searched with another returns noise, or fails inside
Chroma with a message that names neither model. Before codi uses a collection, this compares what
the collection records (the embedding function's name and model, the size of its vectors) with the
function at hand. Learning the size of a server's vectors embeds one short text, so a server that is
down is found here, before any conversation starts.
"""

from __future__ import annotations

from typing import Any

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection

from codi_agents.errors import ConfigError

_FIX = "Use the embedding settings it was built with, or another index folder (--index DIR, or chroma_path)."


def open_collection(client: ClientAPI, name: str, embed: Any, where: str) -> Collection:
    """Get or create collection `name` for `embed`, refusing one built with another embedding model."""
    try:
        collection = client.get_or_create_collection(
            name, embedding_function=embed, configuration={"hnsw": {"space": "cosine"}}
        )
    except ValueError as exc:  # Chroma refuses another embedding function's name; say it our way
        if "embedding function" not in str(exc).lower():
            raise
        raise ConfigError(
            f"The passage index at {where} was built with another embedding function than {_label(embed)} "
            f"(Chroma says: {exc}). {_FIX}"
        ) from exc
    check_collection(collection, embed, where)
    return collection


def check_collection(collection: Collection, embed: Any, where: str) -> None:
    """Raise a `ConfigError` naming both models (or both sizes) when `collection` was built with another model."""
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    stored_model = (stored.get("config") or {}).get("model") if isinstance(stored, dict) else None
    model = getattr(embed, "model", None)
    if isinstance(stored_model, str) and isinstance(model, str) and stored_model != model:
        raise ConfigError(
            f"The passage index at {where} was built with the embedding model {stored_model}, not {model}: "
            f"their vectors cannot be compared. {_FIX}"
        )
    expected = getattr(embed, "dimension", None)  # a server's function learns it here (one short request)
    if not isinstance(expected, int):
        return
    found = collection.get(limit=1, include=["embeddings"])["embeddings"]
    if found is None or len(found) == 0:
        return
    size = len(found[0])
    if size != expected:
        built_with = f"the embedding model {stored_model}" if isinstance(stored_model, str) else "another model"
        raise ConfigError(
            f"The passage index at {where} holds vectors of size {size} (made with {built_with}), but "
            f"{_label(embed)} makes vectors of size {expected}. {_FIX}"
        )


def _label(embed: Any) -> str:
    model = getattr(embed, "model", None)
    if isinstance(model, str) and model:
        return f"the embedding model {model}"
    name = getattr(embed, "name", None)
    return f"the embedding function {name() if callable(name) else type(embed).__name__}"
