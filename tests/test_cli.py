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
