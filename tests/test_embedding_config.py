"""The `[embedding]` section: where it is read from, its defaults, its key, and what a session and workers make of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from codi_agents.batch._cluster_run import worker_settings
from codi_agents.config import Settings, resolve_embedding, resolve_settings
from codi_agents.errors import ConfigError
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
from codi_agents.retrieval._remote_embeddings import ServerEmbeddingFunction
from codi_agents.simulation._session import Session
from codi_agents.testing import scripted_models

KEY = "sk-embed-SECRET-77a0c3e9b1d24f58"


def test_no_section_means_the_packaged_minilm() -> None:
    settings = resolve_settings(environ={})
    assert resolve_embedding(settings) is None
    assert isinstance(Session(settings, models=scripted_models()).embedding_function, MiniLMEmbeddingFunction)


def test_the_section_is_read_from_the_config_file_with_the_key_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "codi.toml"
    config.write_text(
        '[embedding]\nbase_url = "http://gpu:8080/v1"\nmodel = "BAAI/bge-small-en-v1.5"\n'
        'api_key = "${EMBED_KEY}"\nbatch_size = 128\nmax_concurrency = 4\n'
    )
    spec = resolve_embedding(resolve_settings(config=config, environ={"EMBED_KEY": KEY}))
    assert spec is not None
    assert (spec.base_url, spec.model, spec.batch_size, spec.concurrency) == (
        "http://gpu:8080/v1",
        "BAAI/bge-small-en-v1.5",
        128,
        4,
    )
    assert spec.api_key is not None and spec.api_key.get_secret_value() == KEY
    assert (spec.timeout, spec.max_retries, spec.dimensions) == (60.0, 4, None)
    assert KEY not in spec.describe() and KEY not in repr(spec)


def test_environment_variables_configure_it_and_flags_beat_them() -> None:
    environ = {
        "CODI_EMBEDDING_BASE_URL": "http://tei:80/v1",
        "CODI_EMBEDDING_MODEL": "e5",
        "CODI_EMBEDDING_API_KEY": KEY,
    }
    settings = resolve_settings(environ=environ)
    assert settings.embedding.model == "e5" and KEY in settings.secrets()
    flagged = resolve_settings(environ=environ, flags={"embedding": {"model": "bge"}})
    assert (flagged.embedding.base_url, flagged.embedding.model) == ("http://tei:80/v1", "bge")


def test_a_url_without_a_model_is_an_error_that_names_the_section(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text('[embedding]\nbase_url = "http://localhost:11434/v1"\n')
    with pytest.raises(ConfigError, match=r"run\.toml.*\[embedding\] has a base_url but no model"):
        resolve_settings(config=tmp_path / "run.toml", environ={})


def test_the_shared_key_is_used_for_the_same_server_only() -> None:
    same = Settings(
        endpoint={"base_url": "http://vllm/v1", "api_key": KEY},
        embedding={"base_url": "http://vllm/v1/", "model": "e5"},
    )
    other = Settings(
        endpoint={"base_url": "http://vllm/v1", "api_key": KEY}, embedding={"base_url": "http://tei/v1", "model": "e5"}
    )
    openai = Settings(endpoint={"api_key": KEY}, embedding={"model": "text-embedding-3-small"})
    same_spec, other_spec, openai_spec = resolve_embedding(same), resolve_embedding(other), resolve_embedding(openai)
    assert same_spec is not None and same_spec.api_key is not None and same_spec.api_key.get_secret_value() == KEY
    assert other_spec is not None and other_spec.api_key is None  # never sent to another host
    assert openai_spec is not None and openai_spec.base_url == "https://api.openai.com/v1"
    assert openai_spec.api_key is not None


def test_a_session_embeds_with_the_server_and_names_it_in_its_fingerprint() -> None:
    served = Settings(embedding={"base_url": "http://tei/v1", "model": "bge-small"})
    session = Session(served, models=scripted_models())
    assert isinstance(session.embedding_function, ServerEmbeddingFunction)
    other = Session(Settings(embedding={"base_url": "http://tei/v1", "model": "e5-base"}), models=scripted_models())
    plain = Session(Settings(), models=scripted_models())
    assert len({session.fingerprint, other.fingerprint, plain.fingerprint}) == 3


def test_each_worker_gets_its_share_of_the_embedding_requests_in_flight() -> None:
    settings = Settings(embedding={"base_url": "http://tei/v1", "model": "bge-small", "max_concurrency": 12})
    shared = worker_settings(Session(settings, models=scripted_models()), workers=4)
    spec = resolve_embedding(shared)
    assert spec is not None and spec.concurrency == 3 and spec.model == "bge-small"
    assert shared.fingerprint() == settings.fingerprint()  # workers make the same conversation ids
