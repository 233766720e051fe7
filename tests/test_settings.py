"""Settings: precedence of arguments, config file and environment; secrets; errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from codi_agents import ConfigError, Settings, load_settings


def test_defaults_use_the_embedded_model() -> None:
    settings = load_settings(environ={})
    assert settings.uses_embedded_model
    assert settings.structured_output_method == "function_calling"
    assert settings.endpoint_for("critic").temperature == 0.0
    assert settings.endpoint_for("user").temperature > settings.endpoint_for("assistant").temperature


def test_openai_environment_variables_configure_every_role() -> None:
    settings = load_settings(
        environ={"OPENAI_BASE_URL": "http://vllm:8000/v1", "OPENAI_API_KEY": "sk-test-123456789", "CODI_MODEL": "qwen"}
    )
    assert not settings.uses_embedded_model
    for role in ("user", "assistant", "critic"):
        endpoint = settings.endpoint_for(role)
        assert endpoint.base_url == "http://vllm:8000/v1"
        assert endpoint.model == "qwen"
    assert settings.secrets() == ["sk-test-123456789"]


def test_arguments_beat_config_file_beats_environment(tmp_path: Path) -> None:
    config = tmp_path / "codi.toml"
    config.write_text(
        'seed = 5\ntop_k = 4\n[endpoint]\nmodel = "from-file"\nbase_url = "http://file/v1"\n[critic]\nmodel = "judge"\n'
    )
    env = {"CODI_MODEL": "from-env", "CODI_BASE_URL": "http://env/v1"}
    settings = load_settings(config, environ=env, seed=9)
    assert settings.seed == 9
    assert settings.top_k == 4
    assert settings.endpoint_for("user").model == "from-file"
    assert settings.endpoint_for("critic").model == "judge"
    assert settings.endpoint_for("critic").base_url == "http://file/v1"


def test_config_file_in_working_directory_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "codi.toml").write_text("top_k = 5\n")
    assert load_settings(environ={}).top_k == 5


def test_config_can_reference_environment_variables_for_secrets(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('[endpoint]\napi_key = "${MY_KEY}"\nmodel = "gpt-4o-mini"\n')
    settings = load_settings(config, environ={"MY_KEY": "sk-from-env-0000000"})
    assert settings.endpoint_for("user").api_key.get_secret_value() == "sk-from-env-0000000"  # type: ignore[union-attr]
    assert "sk-from-env" not in settings.model_dump_json()
    with pytest.raises(ConfigError, match="MY_KEY, which is not set"):
        load_settings(config, environ={})


def test_bad_config_names_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "codi.toml"
    config.write_text("top_k = 0\ncolour = 'red'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert f"{config}: top_k:" in str(caught.value)
    assert f"{config}: colour: unknown field" in str(caught.value)


def test_fingerprint_changes_with_output_settings_only() -> None:
    base = load_settings(environ={})
    assert base.fingerprint() == load_settings(environ={}, chroma_path="/tmp/x").fingerprint()
    assert base.fingerprint() != load_settings(environ={}, top_k=5).fingerprint()
    keyed = load_settings(environ={"CODI_MODEL": "m", "CODI_BASE_URL": "http://h/v1", "CODI_API_KEY": "sk-1"})
    rekeyed = load_settings(environ={"CODI_MODEL": "m", "CODI_BASE_URL": "http://h/v1", "CODI_API_KEY": "sk-2"})
    assert keyed.fingerprint() == rekeyed.fingerprint()


def test_credentials_written_into_a_base_url_count_as_secrets_and_are_never_shown() -> None:
    settings = Settings(
        endpoint={"base_url": "https://team:hunter2-hunter2@llm.example/v1", "model": "m"},
        critic={"base_url": "https://judge.example/v1?api-key=judge-key-123456&region=eu", "model": "j"},
    )
    assert {"hunter2-hunter2", "team:hunter2-hunter2", "judge-key-123456"} <= set(settings.secrets())
    assert "eu" not in settings.secrets()
    shown = settings.endpoint_for("user").describe() + settings.endpoint_for("critic").describe()
    assert "hunter2" not in shown and "judge-key" not in shown
    assert "team:***@llm.example" in shown and "region=eu" in shown
