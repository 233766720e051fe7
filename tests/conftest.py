"""Shared fixtures: no network, no keys, no config file from the developer's machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codi_agents import Document, Settings
from codi_agents.simulation._session import Session
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

DATA = Path(__file__).parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's keys, endpoints or codi.toml."""
    for name in list(__import__("os").environ):
        if name.startswith(("OPENAI_", "CODI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def load_jsonl_documents(name: str) -> list[Document]:
    """Documents from a JSONL file in tests/data."""
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    return [Document(id=row["id"], title=row["title"], text=row["text"]) for row in rows]


@pytest.fixture
def document() -> Document:
    """A real Doc2Dial document (NY DMV help page)."""
    return load_jsonl_documents("doc2dial_docs.jsonl")[0]


@pytest.fixture
def wiki_document() -> Document:
    """A real QuAC Wikipedia section."""
    return load_jsonl_documents("quac_docs.jsonl")[0]


@pytest.fixture
def one_document(tmp_path: Path) -> Path:
    """A corpus of one short document: the CLI indexes it with the real MiniLM embeddings."""
    path = tmp_path / "one.jsonl"
    row = json.loads((DATA / "doc2dial_docs.jsonl").read_text().splitlines()[0])
    path.write_text(json.dumps({**row, "text": row["text"][:1500]}) + "\n")
    return path


@pytest.fixture
def embedding() -> HashingEmbeddingFunction:
    """Deterministic embeddings, no model."""
    return HashingEmbeddingFunction()


@pytest.fixture
def settings() -> Settings:
    """Default settings with a fixed seed."""
    return Settings(seed=7)


@pytest.fixture
def session(settings: Settings, embedding: HashingEmbeddingFunction):  # type: ignore[no-untyped-def]
    """An open session with scripted models and hashing embeddings."""
    with Session(settings, models=scripted_models(), embedding_function=embedding) as opened:
        yield opened
