"""Settings: the one resolver's layers (flags, config file, codi.toml, environment); secrets; errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from codi_agents import Settings, load_settings
from codi_agents.config import load_run_config, resolve_roles, resolve_settings
from codi_agents.errors import ConfigError


def test_defaults_use_the_embedded_model() -> None:
    settings = load_settings(environ={})
    roles = resolve_roles(settings)
    assert roles.embedded_roles == {"user", "assistant", "critic"}
    assert settings.structured_output_method == "function_calling"
    assert roles["critic"].temperature == 0.0
    assert roles["user"].temperature > roles["assistant"].temperature


def test_openai_environment_variables_configure_every_role() -> None:
    settings = load_settings(
        environ={"OPENAI_BASE_URL": "http://vllm:8000/v1", "OPENAI_API_KEY": "sk-test-123456789", "CODI_MODEL": "qwen"}
    )
    assert not resolve_roles(settings).needs_embedded_model
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


def test_each_layer_beats_the_ones_below_it(tmp_path: Path) -> None:
    """flags > config file (top level or [settings]) > ./codi.toml > environment > defaults."""
    (tmp_path / "codi.toml").write_text(
        'top_k = 4\nchunk_size = 500\nmax_user_retries = 3\n[endpoint]\nmodel = "toml"\n'
    )
    config = tmp_path / "run.toml"
    config.write_text(
        "n = 3\ntop_k = 5\n[personas]\ncurious_student = 1\n"
        '[settings]\nchunk_size = 700\nmax_assistant_retries = 4\n[settings.critic]\nmodel = "judge"\n'
    )
    env = {"CODI_MODEL": "env", "CODI_BASE_URL": "http://env/v1", "CODI_CRITIC_MODEL": "env-judge"}
    settings = resolve_settings(flags={"max_assistant_retries": 1, "seed": None}, config=config, environ=env)
    assert settings.max_assistant_retries == 1  # flag over [settings]
    assert settings.chunk_size == 700  # the file's [settings] over codi.toml
    assert settings.top_k == 5  # the file's top level over codi.toml
    assert settings.max_user_retries == 3  # codi.toml where nothing above sets it
    assert settings.endpoint.model == "toml" and settings.critic.model == "judge"  # codi.toml, file over env
    assert settings.endpoint.base_url == "http://env/v1"  # environment where no file sets it
    assert settings.seed == 0 and settings.top_k != Settings().top_k  # a None flag is no flag
    # The same file read as a run config once: the resolver takes its settings layer without reading it again.
    assert resolve_settings(flags={"max_assistant_retries": 1}, config=load_run_config(config), environ=env) == settings


def test_a_config_file_is_settings_plus_run_keys_whichever_command_reads_it(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"  # a codi.toml-style file, given to `codi run`
    settings_file.write_text('seed = 7\ntop_k = 2\n[endpoint]\nmodel = "m"\nbase_url = "http://h/v1"\n')
    run = load_run_config(settings_file, n=2)
    assert (run.n, run.seed) == (2, 7)  # a top-level seed is the plan's seed in a run
    assert resolve_settings(config=run, environ={}).top_k == 2
    run_file = tmp_path / "run.toml"  # a run config, given to `codi simulate`: its run keys are ignored
    run_file.write_text('seed = 3\nn = 9\nconcurrency = 4\n[dedup]\ndrop = "conversations"\n[settings]\ntop_k = 6\n')
    settings = resolve_settings(config=run_file, environ={})
    assert (settings.top_k, settings.seed) == (6, 3)  # the top-level seed is the conversation's in simulate
    assert load_run_config(run_file, dedup={"threshold": 0.5}).dedup.drop == "conversations"  # tables merge
    (tmp_path / "twice.toml").write_text("top_k = 2\n[settings]\ntop_k = 3\n")
    with pytest.raises(ConfigError, match="top_k: set at the top level and in \\[settings\\]; keep one"):
        resolve_settings(config=tmp_path / "twice.toml", environ={})
    with pytest.raises(ConfigError, match="sed: unknown field"):
        (tmp_path / "typo.toml").write_text("sed = 3\n")
        load_run_config(tmp_path / "typo.toml")
    with pytest.raises(ConfigError, match="colour: unknown field"):
        (tmp_path / "typo.toml").write_text("colour = 'red'\n[settings]\ntop_k = 2\n")
        resolve_settings(config=tmp_path / "typo.toml", environ={})


def test_equal_settings_keep_the_fingerprints_of_earlier_versions() -> None:
    """Conversation ids and resumes rest on these hashes: computed with codi as of commit d3636ca."""
    assert Settings().fingerprint() == "5e90e3ea05339e72"
    assert Settings(endpoint={"base_url": "http://h/v1", "model": "m", "api_key": "k"}).fingerprint() == (
        "5df236cdddb17f3f"
    )
    mixed = Settings(critic={"temperature": 0.5}, top_k=5, user={"base_url": "http://u/v1", "model": "u"})
    assert mixed.fingerprint() == "d0a66daa9a0bb8aa"


def test_keyword_settings_over_given_settings_are_validated_like_any_layer() -> None:
    base = Settings(critic={"api_key": "sk-judge-0123456789", "base_url": "http://judge/v1", "model": "j"}, top_k=4)
    changed = resolve_settings(flags={"critic": {"model": "bigger"}, "seed": 3}, base=base)
    assert (changed.critic.model, changed.critic.base_url, changed.top_k, changed.seed) == (
        "bigger",
        "http://judge/v1",
        4,
        3,
    )
    assert changed.critic.api_key is not None and changed.critic.api_key.get_secret_value() == "sk-judge-0123456789"
    assert resolve_settings(base=base) == base
    with pytest.raises(ConfigError, match="top_k"):
        resolve_settings(flags={"top_k": 0}, base=base)
