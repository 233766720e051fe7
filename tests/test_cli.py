"""The command line: errors become messages with exit codes; `codi tasks` lists the tasks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def codi(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codi_agents", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_missing_document_is_a_user_error_with_exit_code_2(tmp_path: Path) -> None:
    result = codi("simulate", "--doc", str(tmp_path / "nope.md"))
    assert result.returncode == 2
    assert "Document file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_persona_file_names_file_and_field(tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("The office opens at 9 am.")
    persona = tmp_path / "p.toml"
    persona.write_text('description = "x"\n')
    result = codi("simulate", "--doc", str(doc), "--persona", str(persona))
    assert result.returncode == 2
    assert f"{persona}: goals: this field is required" in result.stderr.replace("\n", "")


def test_tasks_lists_the_built_in_task() -> None:
    result = codi("tasks")
    assert result.returncode == 0
    assert "grounded_qa" in result.stdout


def test_help_lists_the_commands() -> None:
    result = codi("--help")
    assert result.returncode == 0
    assert "simulate" in result.stdout and "tasks" in result.stdout


def test_config_means_one_file_format_for_simulate_and_run(tmp_path: Path) -> None:
    """`codi simulate --config run.toml` uses the run config's settings; `codi run --config settings.toml` a
    codi.toml-style file's; and `--base-url` without `--model` uses the one model the server serves."""
    import json

    from codi_agents.testing import FakeOpenAIServer

    rows = (Path(__file__).parent / "data" / "doc2dial_docs.jsonl").read_text().splitlines()[:1]
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({**json.loads(r), "text": json.loads(r)["text"][:1200]}) + "\n" for r in rows)
    )
    (tmp_path / "doc.md").write_text(json.loads(rows[0])["text"][:1200])
    with FakeOpenAIServer(model="served-model") as server:
        endpoint = f'base_url = "{server.base_url}"\nmodel = "served-model"\napi_key = "k"\n'
        (tmp_path / "run.toml").write_text(
            f'n = 5\nconcurrency = 2\n[personas]\ncurious_student = 1\n[settings]\nflow = "factoid_short"\n'
            f"[settings.endpoint]\n{endpoint}"
        )
        (tmp_path / "settings.toml").write_text(f'flow = "factoid_short"\ntop_k = 2\n[endpoint]\n{endpoint}')
        simulated = codi("simulate", "--doc", "doc.md", "--config", "run.toml", "--out", "conv.json", cwd=tmp_path)
        assert simulated.returncode == 0, simulated.stderr[-2000:]
        record = json.loads((tmp_path / "conv.json").read_text())
        assert record["models"]["assistant"] == "served-model" and record["flow"] == "factoid_short"

        ran = codi("run", "corpus.jsonl", "--out", "out", "--config", "settings.toml", "--n", "1", cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr[-2000:]
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert "served-model" in manifest["models"]["critic"] and manifest["planned"] == 1

        discovered = codi("simulate", "--doc", "doc.md", "--base-url", server.base_url, "--flow", "factoid_short",
                          "--out", "found.json", cwd=tmp_path)  # fmt: skip
        assert discovered.returncode == 0, discovered.stderr[-2000:]
        assert "serves one model, served-model: using it" in discovered.stderr.replace("\n", " ")
        assert json.loads((tmp_path / "found.json").read_text())["models"]["user"] == "served-model"
        assert server.stats()["models"] >= 1


def test_a_server_serving_several_models_is_a_user_error_listing_them(tmp_path: Path) -> None:
    from codi_agents.testing import FakeOpenAIServer

    (tmp_path / "doc.md").write_text("The office opens at 9 am.")
    with FakeOpenAIServer(model="a-model", other_models=("b-model",)) as server:
        result = codi("simulate", "--doc", "doc.md", "--base-url", server.base_url, cwd=tmp_path)
    assert result.returncode == 2
    assert "serves 2 models and none is chosen" in result.stderr and "a-model, b-model" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_redactor_belongs_to_one_command_and_learns_from_its_settings() -> None:
    from codi_agents import Settings
    from codi_agents.cli._common import Redactor

    first = Redactor.from_environment({"OPENAI_API_KEY": "sk-env-key-0123456789", "HOME": "/home/someone-long"})
    first.add(None, "", "sk-flag-key-0123456789")
    first.add_settings(Settings(critic={"base_url": "https://team:hunter2-hunter2@llm.example/v1", "model": "m"}))
    shown = first("sent sk-env-key-0123456789, sk-flag-key-0123456789 and hunter2-hunter2 to /home/someone-long")
    assert "sk-env-key" not in shown and "sk-flag-key" not in shown and "hunter2-hunter2" not in shown
    assert "/home/someone-long" in shown  # only *API_KEY variables are secrets
    second = Redactor.from_environment({})
    assert second.secrets == [] and second("sk-flag-key-0123456789") == "sk-flag-key-0123456789"


def test_the_process_freezes_its_objects_before_the_shutdown_collections() -> None:
    """The interpreter's collections at exit walked every object of a run (0.6-0.8 s); frozen, they skip them."""
    script = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at shutdown:', gc.get_freeze_count() > 0))\n"  # runs after codi's
        "from codi_agents.cli import main\n"
        "main(['tasks'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "grounded_qa" in result.stdout  # the command's own output is intact
    assert result.stdout.rstrip().endswith("frozen at shutdown: True")
