"""The examples in examples/ run as written, here with scripted models and hashing embeddings (no model, no network)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from codi_agents import load_flow
from codi_agents.export._formats import training_messages
from codi_agents.tasks import get_task, unregister_task
from codi_agents.testing import HashingEmbeddingFunction, ScriptedChatModel, scripted_models

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py as a fresh module, as `python examples/<name>.py` would run it."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def plain_language_cleanup() -> Iterator[None]:
    yield
    unregister_task("plain_language")


def test_simulate_one_prints_an_accepted_conversation(capsys: pytest.CaptureFixture[str]) -> None:
    models = scripted_models()
    conversation = load_example("simulate_one").main(models=models, embedding_function=HashingEmbeddingFunction())
    out = capsys.readouterr().out
    assert conversation.accepted, conversation.rejection_reason
    assert conversation.doc_title.startswith("Surrender") and conversation.persona.name == "busy_professional"
    assert conversation.path == load_flow("factoid_short").sample_path(1)
    assert f"path: {' -> '.join(conversation.path)}" in out
    assert f"accepted: {conversation.exchanges} exchanges" in out
    assert f"assistant: {len(conversation.path)} requests" in out
    assert len(models["assistant"].calls) == len(conversation.path)


def test_custom_persona_and_flow_are_used(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("custom_persona_and_flow")
    models = scripted_models()
    conversation = example.main(models=models, embedding_function=HashingEmbeddingFunction())
    out = capsys.readouterr().out
    assert conversation.accepted, conversation.rejection_reason
    assert conversation.persona == example.VETERAN
    assert conversation.flow == "benefit_check"
    assert set(conversation.path) <= {"overview", "follow_up", "yes_no", "not_covered", "closing"}
    assert conversation.path[0] == "overview"
    assert "flow 'benefit_check': 5 links" in out
    first_user_prompt = models["user"].calls[0][0].content
    assert "A veteran who left the army last month" in first_user_prompt
    assert "Ask what the benefit described in the document is" in models["user"].calls[0][-1].content


def test_register_task_registers_and_simulates_with_its_own_prompts(
    capsys: pytest.CaptureFixture[str], plain_language_cleanup: None
) -> None:
    models = scripted_models()
    conversation = load_example("register_task").main(models=models, embedding_function=HashingEmbeddingFunction())
    out = capsys.readouterr().out
    assert "caught at creation: Task 'plain_language', prompt assistant_system: unknown placeholder(s) {pasages}" in out
    assert conversation.accepted, conversation.rejection_reason
    assert conversation.task == "plain_language" and conversation.flow == "factoid_short"
    assert "Write for a reader aged about twelve" in models["assistant"].calls[0][0].content
    assert "The reply must suit a reader aged about twelve" in models["critic"].calls[0][-1].content
    assert "in plain language" in training_messages(conversation, get_task(conversation.task))[0]["content"]


@pytest.mark.local_model
def test_simulate_one_runs_as_a_script_on_the_embedded_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "simulate_one.py")], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "path: " in result.stdout
    assert "accepted: " in result.stdout or "rejected (" in result.stdout
    assert "smollm2" in result.stdout.lower()


def test_run_batch_writes_the_planned_conversations_and_resumes_without_redoing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = scripted_models()
    summary = load_example("run_batch").main(
        tmp_path / "run", models=models, embedding_function=HashingEmbeddingFunction()
    )
    out = capsys.readouterr().out
    assert summary["planned"] == 3 and summary["accepted"] == 3, summary["rejection_reasons"]
    assert set(summary["by_persona"]) <= {"curious_student", "busy_professional"}
    assert set(summary["by_flow"]) == {"factoid_short"}
    assert summary["cost"] is not None and summary["cost"]["total"] > 0
    assert "3 planned, 3 accepted, 0 rejected (100% accepted)" in out
    accepted_lines = [line for line in out.splitlines() if line.startswith("accepted: ")]
    assert len(accepted_lines) == 3
    assert "resumed: 0 new conversations, 3 on disk" in out
    records = (tmp_path / "run" / "accepted.jsonl").read_text().splitlines()
    assert len(records) == 3  # the resume wrote nothing twice
    assert (tmp_path / "run" / "summary.json").exists() and (tmp_path / "run" / "manifest.json").exists()


def test_export_and_report_runs_the_batch_then_exports_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/export_and_report.py` has it
    run_dir = tmp_path / "run"
    report = load_example("export_and_report").main(
        run_dir, models=scripted_models(), embedding_function=HashingEmbeddingFunction()
    )
    out = capsys.readouterr().out
    assert report.overview.accepted == 3 and report.overview.conversations == 3
    assert report.reference is not None and report.reference.conversations > 0
    train = (run_dir / "data" / "openai" / "train.jsonl").read_text().splitlines()
    assert train and all('"messages"' in line for line in train)
    assert (run_dir / "data" / "hf" / "dataset_dict.json").exists()
    html = (run_dir / "report.html").read_text()
    assert "Doc2Dial (human)" in html and (run_dir / "report.json").exists()
    assert "export openai: " in out and "export hf: " in out and "report: " in out


def test_export_and_report_says_when_nothing_was_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    models = scripted_models()
    models["assistant"] = ScriptedChatModel(
        script=lambda messages: "I think it costs 4,217 dollars, and I applied for it myself in 1987."
    )
    report = load_example("export_and_report").main(
        tmp_path / "run", models=models, embedding_function=HashingEmbeddingFunction()
    )
    out = capsys.readouterr().out
    assert report.overview.accepted == 0 and report.overview.rejected == 3
    assert out.count("export openai: ") == 1 and "holds no accepted conversations (3 rejected ones" in out
    assert not (tmp_path / "run" / "data" / "openai" / "train.jsonl").exists()
    assert (tmp_path / "run" / "report.html").exists()
