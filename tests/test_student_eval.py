"""`codi eval-student` on hand-made conversations with a scripted student: what the student is shown,
counted skips, results written as they are scored, resume after an interruption, failing models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from codi_agents import Settings
from codi_agents.cli import main
from codi_agents.errors import RunError, UserError
from codi_agents.student import ChatModelStudent, eval_student, read_reference_turns
from codi_agents.student._eval import evaluate_student
from codi_agents.student._prompt import StudentPrompter
from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction, ScriptedChatModel

CONVERSATIONS = Path(__file__).parent / "data" / "student_conversations.jsonl"


def _student(script: object) -> ChatModelStudent:
    return ChatModelStudent(ScriptedChatModel(script=script), {"kind": "scripted", "model": "scripted"})


def _echo_reference(messages: list[BaseMessage]) -> str:
    """A perfect student for the fixture: answers each question with the human reply."""
    question = str(messages[-1].content)
    return {
        "How do I get a library card?": "Bring a photo ID and a proof of address to any branch.",
        "Yes. How many books can I borrow?": "You may borrow up to twenty items at a time.",
        "Who designed the library building?": "The document does not say who designed it.",
        "When does the pool open?": "It opens on the first Saturday of June.",
        "How much are swimming lessons?": "Forty dollars per session.",
    }[question]


def test_reading_turns_skips_what_cannot_be_scored_and_marks_unanswerable() -> None:
    references = read_reference_turns(CONVERSATIONS)
    assert [turn.id for turn in references.turns] == ["lib-1:1", "lib-1:4", "lib-1:6", "pool-1:1", "pool-1:3"]
    assert references.skipped == {
        "agent turn answering no user turn": 1,
        "no human reply text": 1,
        "no document": 1,
        "invalid line": 1,
    }
    by_id = {turn.id: turn for turn in references.turns}
    assert by_id["lib-1:1"].position == "first" and by_id["lib-1:4"].position == "later"
    # the agent's follow-up question joins the previous assistant message of the history
    assert by_id["lib-1:4"].history[-1]["content"].endswith("Do you live in Millbrook?")
    assert by_id["lib-1:6"].unanswerable  # empty grounding span
    assert by_id["pool-1:3"].unanswerable  # QuAC's CANNOTANSWER
    assert by_id["pool-1:1"].references == ["It opens on the first Saturday of June.", "The first Saturday of June."]


def test_the_student_sees_retrieved_passages_history_and_the_user_turn(tmp_path: Path) -> None:
    chat = ScriptedChatModel(script=_echo_reference)
    student = ChatModelStudent(chat, {"kind": "scripted"})
    outcome = eval_student(student, CONVERSATIONS, tmp_path / "r.jsonl", embedding_function=HashingEmbeddingFunction())
    second = chat.calls[1]
    assert second[0].type == "system" and "Late fees were abolished" in str(second[0].content)
    assert 'from the document "Library cards"' in str(second[0].content)
    assert [m.type for m in second[1:]] == ["human", "ai", "human"]
    by_id = {result.id: result for result in outcome.results}
    assert by_id["lib-1:1"].em == 1.0
    assert by_id["lib-1:6"].f1 == 1.0  # abstained on an unanswerable turn
    assert by_id["pool-1:3"].f1 == 0.0  # answered an unanswerable turn
    assert by_id["lib-1:1"].passage_ids and all(pid.startswith("lib") for pid in by_id["lib-1:1"].passage_ids)


def test_an_interrupted_evaluation_resumes_without_redoing_scored_turns(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"

    def interrupt_on_third(messages: list[BaseMessage]) -> str:
        if str(messages[-1].content).startswith("Who designed"):
            raise KeyboardInterrupt
        return _echo_reference(messages)

    with pytest.raises(KeyboardInterrupt):
        eval_student(_student(interrupt_on_third), CONVERSATIONS, out, embedding_function=HashingEmbeddingFunction())
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "header" and len(lines) == 3  # header + 2 scored turns
    with out.open("a") as handle:
        handle.write('{"id": "torn')  # a crash in the middle of a line
    chat = ScriptedChatModel(script=_echo_reference)
    outcome = eval_student(
        ChatModelStudent(chat, {"kind": "scripted", "model": "scripted"}),
        CONVERSATIONS,
        out,
        embedding_function=HashingEmbeddingFunction(),
    )
    assert len(chat.calls) == 3  # only the turns not yet scored
    assert outcome.resumed == 2
    assert sorted(result.id for result in outcome.results) == ["lib-1:1", "lib-1:4", "lib-1:6", "pool-1:1", "pool-1:3"]
    assert len(out.read_text().splitlines()) == 6


def test_results_of_another_model_are_not_mixed_in(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    eval_student(_student(_echo_reference), CONVERSATIONS, out, embedding_function=HashingEmbeddingFunction())
    other = ChatModelStudent(ScriptedChatModel(script=_echo_reference), {"kind": "scripted", "model": "other"})
    with pytest.raises(UserError, match="another model"):
        eval_student(other, CONVERSATIONS, out, embedding_function=HashingEmbeddingFunction())


def test_empty_and_looping_replies_are_counted_and_a_failing_turn_is_retried_later(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    script = ["", "la femme de France " * 6, RuntimeError("server hiccup"), "ok", "ok"]
    outcome = eval_student(_student(script), CONVERSATIONS, out, embedding_function=HashingEmbeddingFunction())
    flags = {result.id: result.flags for result in outcome.results}
    assert flags["lib-1:1"] == ["empty"] and flags["lib-1:4"] == ["looping"]
    assert list(outcome.failed) == ["lib-1:6"]
    again = eval_student(
        _student(["The document does not say."]), CONVERSATIONS, out, embedding_function=HashingEmbeddingFunction()
    )
    assert {result.id for result in again.results} >= {"lib-1:6"} and not again.failed


def test_a_model_that_keeps_failing_stops_with_the_results_kept(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    prompter = StudentPrompter(Settings(), HashingEmbeddingFunction())
    student = _student(["fine", *[RuntimeError("connection refused")] * 4])
    with pytest.raises(RunError, match="failed 4 turns in a row"):
        evaluate_student(read_reference_turns(CONVERSATIONS), student, prompter, out, source="x", max_failures=4)
    assert len(out.read_text().splitlines()) == 2  # the header and the one scored turn


def test_cli_scores_an_endpoint_and_writes_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenAIServer() as server:
        main([
            "eval-student", server.base_url, "--model", server.model, "--on", str(CONVERSATIONS),
            "--out", str(tmp_path / "r.jsonl"), "--json", str(tmp_path / "s.json"),
            "--plot", str(tmp_path / "p.html"), "--limit", "2",
        ])  # fmt: skip
    summary = json.loads((tmp_path / "s.json").read_text())
    groups = {group["group"]: group for group in summary["groups"]}
    assert groups["overall"]["turns"] == 2
    assert groups["first turn"]["turns"] == 1 and groups["later turns"]["turns"] == 1
    assert summary["model"]["temperature"] == 0 and summary["model"]["base_url"] == server.base_url
    assert "system_template" in summary["prompt"]
    assert summary["skipped"]["no document"] == 1
    assert "plotly" in (tmp_path / "p.html").read_text()
    assert "later turns" in capsys.readouterr().out


def test_cli_reports_a_missing_conversations_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval-student", "http://127.0.0.1:9/v1", "--model", "m", "--on", "missing.jsonl", "--out", "r.jsonl"])
    assert exit_info.value.code == 2
    assert "Conversations file not found" in capsys.readouterr().err
