"""`codi eval-critic`: labelled items read (malformed lines reported), metrics computed as worked out by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from typer.testing import CliRunner

from codi_agents import Settings
from codi_agents.cli import _register, app
from codi_agents.critic import load_calibration
from codi_agents.evaluation._evaluate import evaluate_file
from codi_agents.evaluation._items import item_context
from codi_agents.evaluation._labelled import read_labelled
from codi_agents.evaluation._metrics import Metrics
from codi_agents.tasks import get_task
from codi_agents.testing import HashingEmbeddingFunction, ScriptedChatModel, approving_judgement

LABELLED = Path(__file__).parent / "data" / "critic_labelled.jsonl"
JUDGE_REJECTS = {"a1", "a3", "b1"}
"""Replies the scripted judge finds unfaithful: a1 and b1 rightly, a3 wrongly; it misses b2."""


def test_malformed_lines_are_reported_with_their_numbers_and_skipped() -> None:
    items, bad = read_labelled(LABELLED)
    assert [item.id for item in items] == ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert [line.line for line in bad] == [4, 6, 10, 11]
    errors = {line.line: line.error for line in bad}
    assert errors[4].startswith("not JSON")
    assert "label" in errors[6] and "required" in errors[6]
    assert errors[10] == "duplicate id 'b3'"
    assert "faithful" in errors[11]
    assert [item.group for item in items] == ["alpha"] * 3 + ["beta"] * 3


def test_a_missing_file_is_a_user_error() -> None:
    from codi_agents.errors import UserError

    with pytest.raises(UserError, match="Labelled file not found"):
        read_labelled(Path("nope.jsonl"))


def test_metrics_from_a_confusion_matrix_worked_out_by_hand() -> None:
    # 3 unfaithful (2 caught), 5 faithful (1 wrongly rejected)
    pairs = [(True, True), (True, True), (True, False), (False, True)] + [(False, False)] * 4
    metrics = Metrics.from_pairs(pairs)
    assert (metrics.true_positives, metrics.false_positives, metrics.true_negatives, metrics.false_negatives) == (
        2,
        1,
        4,
        1,
    )
    assert metrics.precision == pytest.approx(2 / 3)
    assert metrics.recall == pytest.approx(2 / 3)
    assert metrics.specificity == pytest.approx(4 / 5)
    assert metrics.balanced_accuracy == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics.accuracy == pytest.approx(6 / 8)
    rejects_all = Metrics.from_pairs([(True, True), (False, True), (False, True)])
    assert rejects_all.balanced_accuracy == 0.5
    assert Metrics.from_pairs([]).balanced_accuracy == 0.0


def test_history_becomes_the_conversation_and_knowledge_the_passages() -> None:
    items, _ = read_labelled(LABELLED)
    a3 = next(item for item in items if item.id == "a3")
    context = item_context(a3, get_task("grounded_qa"))
    assert [passage.text for passage in context.passages] == a3.knowledge
    assert [(turn.role, turn.content) for turn in context.history] == [
        ("user", "When does the library open?"),
        ("assistant", "At 9 am on weekdays."),
    ]
    assert context.question == "And are cards free?"
    assert context.answer == a3.response


def _scripted_judge(messages: list[BaseMessage]) -> dict[str, Any]:
    reply = re.search(r"Reply under review: (.*?)\n\nExpectation:", str(messages[-1].content), re.S)
    assert reply is not None
    items, _ = read_labelled(LABELLED)
    item = next(item for item in items if item.response == reply.group(1))
    if item.id in JUDGE_REJECTS:
        return {**approving_judgement([]), "grounded": False, "faithful": False, "score": 0.1, "reasons": "invented"}
    return approving_judgement([])


def test_with_a_leading_judge_the_metrics_match_the_hand_computed_values() -> None:
    judge = ScriptedChatModel(script=_scripted_judge, model_name="scripted-judge")
    report = evaluate_file(
        LABELLED, Settings(judge_weight=1.0), critic_model=judge, embedding_function=HashingEmbeddingFunction()
    )
    assert len(judge.calls) == 6
    assert report.judge_weight == 1.0 and "scripted-judge" in report.critic
    # alpha: a1 TP, a2 TN, a3 FP; beta: b1 TP, b2 FN (the judge misses it), b3 TN
    overall = report.overall
    assert (overall.true_positives, overall.false_positives, overall.true_negatives, overall.false_negatives) == (
        2,
        1,
        2,
        1,
    )
    assert overall.precision == pytest.approx(2 / 3)
    assert overall.recall == pytest.approx(2 / 3)
    assert overall.balanced_accuracy == pytest.approx(2 / 3)
    alpha, beta = report.by_group["alpha"], report.by_group["beta"]
    assert (alpha.precision, alpha.recall, alpha.balanced_accuracy) == (0.5, 1.0, 0.75)
    assert (beta.precision, beta.recall, beta.balanced_accuracy) == (1.0, 0.5, 0.75)
    # the shipped calibration (v2) was fitted on these hand-written items too: none is held out
    assert report.fitted is not None and report.fitted.items == len(report.results)
    assert report.held_out is not None and report.held_out.items == 0
    b1 = next(result for result in report.results if result.id == "b1")
    assert b1.verdict.judge is not None and b1.verdict.judge["faithful"] is False
    assert [bad.line for bad in report.skipped] == [4, 6, 10, 11]


def test_with_judge_weight_zero_no_judge_is_called() -> None:
    judge = ScriptedChatModel(script=_scripted_judge, model_name="scripted-judge")
    report = evaluate_file(
        LABELLED, Settings(judge_weight=0.0), critic_model=judge, embedding_function=HashingEmbeddingFunction()
    )
    assert judge.calls == []
    assert report.critic == "no judge (signals only)"
    assert all(result.verdict.judge is None for result in report.results)


def _app() -> Any:
    if not any(command.name == "eval-critic" for command in app.registered_commands):
        _register()
    return app


@pytest.fixture
def hashing_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI uses the packaged MiniLM; unit tests use hashing embeddings instead."""
    monkeypatch.setattr(
        "codi_agents.retrieval._embeddings.default_embedding_function", lambda settings=None: HashingEmbeddingFunction()
    )


def test_cli_prints_the_metrics_and_writes_json(hashing_embeddings: None, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(_app(), ["eval-critic", str(LABELLED), "--judge-weight", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    for line in (4, 6, 10, 11):
        assert f"line {line} skipped" in result.output
    assert "no judge (signals only)" in result.output
    assert "median time per item" in result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 10}
    all_items = [cell.strip() for cell in rows["all"].split("│")[2:-1]]
    assert all_items == ["6", "1.000", "1.000", "1.000", "1.000", "3", "0", "3", "0"]  # items, metrics, TP FP TN FN
    assert {"alpha", "beta"} <= set(rows)  # one row per source
    matrix = {line.split("│")[1].strip(): line.split("│")[2:4] for line in result.output.splitlines()
              if line.count("│") == 4}  # fmt: skip
    assert [cell.strip() for cell in matrix["unfaithful"]] == ["3", "0"]
    assert [cell.strip() for cell in matrix["faithful"]] == ["0", "3"]
    data = json.loads(out.read_text())
    assert data["items"] == 6
    assert [entry["line"] for entry in data["skipped_lines"]] == [4, 6, 10, 11]
    # the hand-made unfaithful replies invent numbers, names or experiences; the faithful ones copy the passage
    assert (data["overall"]["true_positives"], data["overall"]["false_positives"]) == (3, 0)
    assert (data["overall"]["true_negatives"], data["overall"]["false_negatives"]) == (3, 0)
    assert data["overall"]["balanced_accuracy"] == 1.0
    assert data["by_source"]["alpha"]["items"] == 3 and data["by_source"]["beta"]["true_positives"] == 2
    assert data["calibration"] == load_calibration().version
    assert {entry["rejection"] for entry in data["results"] if entry["label"] == "unfaithful"} == {"unfaithful"}
    assert all("unsupported_share" in entry["signals"] for entry in data["results"])


def test_cli_limit_and_missing_file(hashing_embeddings: None, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        _app(), ["eval-critic", str(LABELLED), "--judge-weight", "0", "--limit", "2", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["items"] == 2
    missing = CliRunner().invoke(_app(), ["eval-critic", str(tmp_path / "nope.jsonl"), "--judge-weight", "0"])
    assert missing.exit_code != 0
    assert "Labelled file not found" in str(missing.exception)


def test_cli_with_a_configured_endpoint_uses_it_as_the_judge(hashing_embeddings: None, tmp_path: Path) -> None:
    from codi_agents.testing._server import FakeOpenAIServer

    out = tmp_path / "eval.json"
    with FakeOpenAIServer() as server:
        options = ["--base-url", server.base_url, "--model", server.model, "--api-key", "sk-fake-key-for-tests"]
        result = CliRunner().invoke(_app(), ["eval-critic", str(LABELLED), "--json", str(out), *options])
        judged = server.stats()["requests"]
    assert result.exit_code == 0, result.output
    assert judged == 6
    data = json.loads(out.read_text())
    assert data["critic"] == f"{server.model} @ {server.base_url}"
    assert data["judge_weight"] == load_calibration().judge_weight_remote
    # the fake judge approves everything and leads: only the personal-claims veto still rejects (b1)
    overall = data["overall"]
    assert (overall["true_positives"], overall["false_positives"]) == (1, 0)
    assert (overall["true_negatives"], overall["false_negatives"]) == (3, 2)
    assert overall["balanced_accuracy"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-4)
    assert "sk-fake-key-for-tests" not in out.read_text() + result.output
