"""The built-in `support` task end to end with scripted models, its rules, and its shipped personas and flows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import load_jsonl_documents
from langchain_core.messages import BaseMessage

from codi_agents import Conversation, Document, Settings, load_flow, load_persona, simulate
from codi_agents._record import Turn, Verdict
from codi_agents.cli import main as codi_main
from codi_agents.export._formats import training_messages
from codi_agents.inputs._passages import Passage
from codi_agents.inputs._personas import available_personas
from codi_agents.inputs._resources import data_dir
from codi_agents.tasks import ConversationDraft, get_task
from codi_agents.tasks.support.rules import (
    STEP_CUE,
    invented_contact_details,
    support_conversation_check,
)
from codi_agents.testing import HashingEmbeddingFunction, ScriptedChatModel

SEED_WITH_EVERY_LINK = 18
"""The support flow's path for this seed has a detail, a follow-up, a failed step, an edge case, a confirmation."""

CUSTOMER = {
    "Describe the problem": "I moved to another state and need to turn in my New York plates. How do I do that?",
    "Give one detail": "I want to do it by mail. What do I need to do in my case?",
    "refer to it with a pronoun": "What does that form ask for?",
    "did not work": "I tried that but the plates came back because the frames were still on. What do I do now?",
    "did not understand": "I did not understand the part about the receipt. What does it mean?",
    "does not cover": "Can I surrender plates for a car that was destroyed in a flood while I was abroad?",
    "Sum up": "So I remove the plates, fill in the PD-7 and mail both to the DMV, right?",
    "thank the agent": "Thanks, I know what to do now.",
}
CUSTOMER_AGAIN = {
    "Describe the problem": "My plates are from New York but I live elsewhere now. What is the process?",
    "Give one detail": "The car is already sold, if that matters. Which steps apply to me?",
    "refer to it with a pronoun": "Where do I send it once it is filled in?",
    "did not work": "The DMV sent the plates back again. What did I miss this time?",
    "did not understand": "I am still confused about the receipt part. Can you explain it differently?",
    "does not cover": "What if the plates were stolen while I was travelling abroad?",
    "Sum up": "To check I have it: plates off, form filled in, both mailed to the DMV. Correct?",
    "thank the agent": "Great, thank you for your help.",
}
"""A second wording for each cue: a customer who says the same thing twice is out of role."""
ABSTENTION = "The help page does not cover that case, so please contact the DMV's support about it."
INVENTED_PHONE = "Mail the plates, then call 518-555-0123 to check that they arrived."
INVENTED_CONTACT = "The help page does not cover that; call the DMV at 518-555-0123 or write to help@dmv-support.org."


@pytest.fixture
def plates() -> Document:
    """The Doc2Dial help page on surrendering plates (NY DMV)."""
    return load_jsonl_documents("doc2dial_docs.jsonl")[1]


def instruction(messages: list[BaseMessage], pattern: str) -> str:
    match = re.search(pattern, str(messages[-1].content), re.S)
    assert match, f"prompt lacks {pattern!r}"
    return match.group(1)


def customer(messages: list[BaseMessage]) -> str:
    wanted = instruction(messages, r"\(Your next message: (.*)\)\s*$")
    cue = next(cue for cue in CUSTOMER if cue in wanted)
    said = {str(message.content) for message in messages if message.type == "ai"}
    return CUSTOMER_AGAIN[cue] if CUSTOMER[cue] in said else CUSTOMER[cue]


def passage_sentences(messages: list[BaseMessage]) -> list[str]:
    blocks = re.findall(r"<passage id=\"[^\"]+\"[^>]*>\n(.*?)\n</passage>", str(messages[0].content), re.S)
    return [s.strip() for block in blocks for s in re.split(r"(?<=[.!?])\s+", block) if len(s.split()) > 4]


def agent(messages: list[BaseMessage]) -> str:
    """Abstains where the link asks about an uncovered case, else quotes a step from its passages that it has not
    quoted yet (a reply that repeats an earlier one is rejected)."""
    if "If the passages do not cover this case" in str(messages[0].content):
        return ABSTENTION
    said = {str(message.content) for message in messages if message.type == "ai"}
    sentences = [s for s in passage_sentences(messages) if s not in said] or passage_sentences(messages)
    return next((s for s in sentences if STEP_CUE.search(s)), sentences[0])


def judge(goal_reached: bool = True) -> Any:
    """An approving support judge; `goal_reached=False` never finds the goal resolved."""

    def judgement(messages: list[BaseMessage]) -> dict[str, Any]:
        told = instruction(messages, r"Instruction the customer was given: (.*?)\n")
        reply = instruction(messages, r"Reply under review: (.*?)\n\nExpectation:")
        uncovered = "does not cover" in told
        return {
            "reasons": "Each step is stated in the passages.",
            "passages_answer_question": not uncovered,
            "grounded": True,
            "faithful": True,
            "answers_question": True,
            "abstained": "does not cover" in reply,
            "follows_instructions_in_passages": False,
            "user_in_role": True,
            "user_link_realised": True,
            "score": 0.9,
            "step_is_actionable": True,
            "invents_contact_details": False,
            "goal_progress": "resolved" if goal_reached and told.startswith("Sum up") else "partial",
        }

    return judgement


def support_models(assistant: Any = agent, critic: Any = None) -> dict[str, ScriptedChatModel]:
    return {
        "user": ScriptedChatModel(script=customer, model_name="customer"),
        "assistant": ScriptedChatModel(script=assistant, model_name="agent"),
        "critic": ScriptedChatModel(script=critic or judge(), model_name="support-judge"),
    }


def run(document: Document, models: dict[str, ScriptedChatModel], **settings: Any) -> Conversation:
    return simulate(
        document,
        "frustrated_customer",
        task="support",
        models=models,
        embedding_function=HashingEmbeddingFunction(),
        settings=Settings(**({"seed": SEED_WITH_EVERY_LINK} | settings)),
    )


def test_support_conversation_is_accepted_with_its_own_prompts_flow_persona_and_rules(plates: Document) -> None:
    models = support_models()
    conversation = run(plates, models)
    assert conversation.accepted, conversation.rejection_reason
    assert conversation.task == "support" and conversation.flow == "support"
    assert conversation.persona.name == "frustrated_customer" and conversation.persona.tasks == ["support"]
    assert conversation.path == load_flow("support").sample_path(SEED_WITH_EVERY_LINK)
    assert {"step_failed", "edge_case", "confirm_resolution"} <= set(conversation.path)
    # the task's prompts reached every role
    assert "You are playing a customer" in models["user"].calls[0][0].content
    assert f"(Your problem is about: {plates.title}.)" in models["user"].calls[0][-1].content
    assert "You are a customer-support agent" in models["assistant"].calls[0][0].content
    critic_system, critic_turn = models["critic"].calls[0]
    assert "step_is_actionable" in critic_system.content
    assert "the reply must give the next concrete step" in critic_turn.content, "the task's own expectation"
    replies = [turn for turn in conversation.turns if turn.role == "assistant"]
    for reply in replies:
        assert reply.verdict is not None and reply.verdict.decided_by.startswith("support:")
    edge = replies[conversation.path.index("edge_case")]
    assert edge.content == ABSTENTION and edge.verdict is not None and edge.verdict.abstained
    assert edge.verdict.judge is not None and edge.verdict.judge["goal_progress"] == "partial"
    assert replies[0].verdict is not None and replies[0].verdict.signals["actionable"] == 1.0
    failed = conversation.turns[2 * conversation.path.index("step_failed")]
    assert (
        failed.check is not None
        and failed.check.link_realised
        and "say that a step did not work" in failed.check.reasons
    )
    # exported training conversations use the support system prompt
    assert (
        "You are a customer-support agent" in training_messages(conversation, get_task(conversation.task))[0]["content"]
    )


def test_invented_contact_details_are_rejected_even_when_the_judge_approves(plates: Document) -> None:
    def inventive(messages: list[BaseMessage]) -> str:
        return (
            INVENTED_CONTACT
            if "If the passages do not cover this case" in str(messages[0].content)
            else agent(messages)
        )

    conversation = run(plates, support_models(assistant=inventive), max_assistant_retries=1)
    assert not conversation.accepted
    assert conversation.rejection == "unfaithful"
    assert "contact details the help page does not give" in (conversation.rejection_reason or "")
    assert "518-555-0123" in (conversation.rejection_reason or "")
    assert "help@dmv-support.org" in (conversation.rejection_reason or "")
    last = conversation.turns[-1]
    assert last.content == INVENTED_CONTACT and last.attempts == 2


def test_every_reply_passing_is_not_enough_when_the_goal_is_never_reached(plates: Document) -> None:
    conversation = run(plates, support_models(critic=judge(goal_reached=False)))
    assert not conversation.accepted
    assert conversation.rejection_reason == "goal not reached: the judge never found the goal resolved"
    replies = [turn for turn in conversation.turns if turn.role == "assistant"]
    assert len(replies) == len(conversation.path)
    assert all(reply.verdict is not None and reply.verdict.accepted for reply in replies)


def test_a_reply_without_a_step_is_regenerated_when_signals_decide(plates: Document) -> None:
    calls = {"n": 0}

    def vague_first(messages: list[BaseMessage]) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            return next(s for s in passage_sentences(messages) if not STEP_CUE.search(s))
        return agent(messages)

    models = support_models(assistant=vague_first)
    conversation = run(plates, models, seed=4, flow="support_quick", judge_weight=0.0)
    assert models["critic"].calls == [], "with weight 0 the judge is not asked"
    assert conversation.accepted, conversation.rejection_reason
    first = conversation.turns[1]
    assert first.attempts == 2
    rejected = first.rejected_attempts[0].verdict
    assert rejected.rejection == "does_not_answer"
    assert rejected.reasons.startswith("the reply gives the customer no step they can act on")
    assert (
        rejected.signals["step_cue"] == 0.0 and first.verdict is not None and first.verdict.signals["step_cue"] == 1.0
    )


def test_an_accepted_prefix_must_still_reach_the_goal(plates: Document) -> None:
    calls = {"n": 0}

    def fails_on_the_fourth(messages: list[BaseMessage]) -> str:
        calls["n"] += 1
        return INVENTED_PHONE if calls["n"] >= 4 else agent(messages)

    conversation = run(
        plates, support_models(assistant=fails_on_the_fourth), seed=2, flow="support_quick",
        acceptance="accepted_prefix", max_assistant_retries=0,
    )  # fmt: skip
    assert conversation.path == [
        "state_problem",
        "follow_up_step",
        "provide_details",
        "follow_up_step",
        "confirm_resolution",
    ]
    assert not conversation.accepted and conversation.rejection == "unfaithful"
    assert conversation.rejection_reason is not None
    assert conversation.rejection_reason.endswith(
        "the accepted prefix was not kept: goal not reached: the customer never confirmed the outcome "
        "(no completed confirm_resolution exchange)"
    )


# --- the rules on their own -----------------------------------------------------------------------------------


def test_contact_details_count_as_invented_only_when_no_passage_gives_them() -> None:
    passages = [Passage(id="d::0", doc_id="d", index=0, text="Call 518-473-5595 or visit dmv.ny.gov for help.")]
    assert invented_contact_details("Call (518) 473-5595.", passages) == []
    assert invented_contact_details("Call 1-800-772-1213 or mail help@ssa.example.", passages) == [
        "1-800-772-1213",
        "help@ssa.example",
    ]
    assert invented_contact_details("See https://fake.example/form", passages) == ["https://fake.example/form"]


def _turn(link: str, *, abstained: bool = False, actionable: bool = True, progress: float | None = None) -> list[Turn]:
    signals = {"actionable": float(actionable)} | ({"goal_progress": progress} if progress is not None else {})
    verdict = Verdict(
        reasons="ok", grounded=True, faithful=True, answers_question=True, abstained=abstained,
        score=0.9, accepted=True, signals=signals,
    )  # fmt: skip
    return [Turn(role="user", content="...", link=link), Turn(role="assistant", content="...", verdict=verdict)]


def _draft(*turns: list[Turn]) -> ConversationDraft:
    flow = load_flow("support")
    all_turns = [turn for pair in turns for turn in pair]
    return ConversationDraft(
        document=Document(id="d", text="x"), persona=load_persona("frustrated_customer", search_dirs=get_task("support").persona_dirs),
        flow=flow, path=[t.link or "" for t in all_turns if t.role == "user"], turns=all_turns, passages={},
    )  # fmt: skip


def test_the_conversation_rule_needs_a_grounded_step_and_a_confirmed_outcome() -> None:
    ok = support_conversation_check(_draft(_turn("state_problem"), _turn("confirm_resolution"), _turn("closing")))
    assert ok.accepted and ok.reason == "goal reached with 2 grounded step(s)"
    no_step = support_conversation_check(
        _draft(
            _turn("state_problem", actionable=False),
            _turn("edge_case", abstained=True),
            _turn("confirm_resolution", abstained=True),
        )
    )
    assert not no_step.accepted and "never gave a grounded step" in no_step.reason
    unconfirmed = support_conversation_check(_draft(_turn("state_problem"), _turn("follow_up_step")))
    assert (
        not unconfirmed.accepted
        and "never confirmed the outcome (no completed confirm_resolution" in unconfirmed.reason
    )
    judged = support_conversation_check(
        _draft(_turn("state_problem", progress=0.5), _turn("confirm_resolution", progress=1.0))
    )
    assert judged.accepted


def test_a_failure_report_that_reports_no_failure_is_recorded_as_not_realised(plates: Document) -> None:
    def forgetful(messages: list[BaseMessage]) -> str:
        told = instruction(messages, r"\(Your next message: (.*)\)\s*$")
        return "What is the next step after the application?" if "did not work" in told else customer(messages)

    models = support_models()
    models["user"] = ScriptedChatModel(script=forgetful, model_name="forgetful")
    conversation = run(plates, models)
    failed = conversation.turns[2 * conversation.path.index("step_failed")]
    assert failed.check is not None and failed.check.in_role and not failed.check.link_realised
    assert failed.check.reasons == "link not realised: it should say that a step did not work"


# --- shipped personas and flows -------------------------------------------------------------------------------


def test_support_personas_ship_in_their_own_folder_and_resolve_for_the_support_task_only() -> None:
    folder = data_dir("personas") / "support"
    files = sorted(folder.glob("*.toml"))
    assert len(files) >= 4
    task = get_task("support")
    assert folder in task.persona_dirs
    personas = [load_persona(path.stem, search_dirs=task.persona_dirs) for path in files]
    assert all(persona.tasks == ["support"] for persona in personas)
    assert len({persona.description for persona in personas}) == len(personas)
    assert set(task.default_personas) == {path.stem for path in files}
    assert "frustrated_customer" not in available_personas(), "grounded_qa does not see support personas"


@pytest.mark.parametrize("flow", ["support", "support_quick"])
def test_support_flows_end_after_the_customer_confirms(flow: str) -> None:
    graph = load_flow(flow)
    assert any("resolution" in link.phenomena for link in graph.links.values())
    for seed in range(300):
        path = graph.sample_path(seed)
        assert path[0] == "state_problem"
        assert path[-1] in {"confirm_resolution", "closing"}
        assert "confirm_resolution" in path


def test_cli_resolves_support_personas_and_flows_before_starting_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "page.md"
    doc.write_text("To renew, fill in form MV-82 and bring it to an office.")
    with pytest.raises(SystemExit) as exit_info:
        codi_main(["simulate", "--task", "support", "--doc", str(doc), "--persona", "nobody"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.replace("\n", "")
    assert "Unknown persona 'nobody'" in message
    assert "frustrated_customer" in message and "customer_in_a_hurry" in message


def test_a_support_batch_exports_and_reports_through_the_task(tmp_path: Path) -> None:
    """run, export and report reach the task's own parts (flow, links, training prompt) with no special case."""
    from codi_agents import run as run_batch
    from codi_agents.export import ExportOptions, export_run
    from codi_agents.report import build_report

    out = tmp_path / "run"
    summary = run_batch(
        Path(__file__).parent / "data" / "doc2dial_docs.jsonl", out, per_document=1, task="support",
        models=support_models(), embedding_function=HashingEmbeddingFunction(), seed=SEED_WITH_EVERY_LINK,
    )  # fmt: skip
    assert summary["accepted"] >= 1
    records = [Conversation.model_validate_json(line) for line in (out / "accepted.jsonl").read_text().splitlines()]
    support_flows = {flow.name for flow in (load_flow("support"), load_flow("support_quick"))}
    assert all(c.task == "support" and c.flow in support_flows for c in records)
    export_run(out, "openai", tmp_path / "data", ExportOptions())
    first = (tmp_path / "data" / "train.jsonl").read_text().splitlines()[0]
    assert "You are a customer-support agent" in first  # the task's training prompt, not grounded QA's
    report = build_report(out)
    assert report.overview.tasks == ["support"] and report.overview.accepted == summary["accepted"]
    planned = {row.link for row in report.structure.links if row.planned}
    assert planned and planned <= set(load_flow("support").links) | set(load_flow("support_quick").links)
