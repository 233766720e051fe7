"""The whole graph with scripted models on a real document: accepted, regenerated, rejected, critic failure."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from codi_agents import Conversation, Document, Settings, load_flow, load_persona
from codi_agents.critic._calibration import load_calibration
from codi_agents.evaluation._fit import write_calibration
from codi_agents.export._formats import training_messages
from codi_agents.simulation._session import Session
from codi_agents.tasks import get_task
from codi_agents.testing import HashingEmbeddingFunction, ScriptedChatModel, approving_judgement, scripted_models

INVENTED = "The fee is exactly 975 dollars, payable only in Paris."


def run(session: Session, document: Document, seed: int = 7, flow: str = "grounded_qa") -> Conversation:
    return asyncio.run(session.simulate(document, load_persona("curious_student"), load_flow(flow), seed=seed))


def reply_under_review(messages: list[BaseMessage]) -> str:
    match = re.search(r"Reply under review: (.*?)\n\nExpectation:", str(messages[-1].content), re.S)
    assert match, "the critic prompt must show the reply under review"
    return match.group(1)


def rejecting_judgement(reasons: str) -> dict[str, Any]:
    return {**approving_judgement([]), "reasons": reasons, "grounded": False, "faithful": False, "score": 0.05}


def critic_that_rejects_invented(messages: list[BaseMessage]) -> dict[str, Any]:
    if "Paris" in reply_under_review(messages):
        return rejecting_judgement("Nothing in the passages mentions a 975 dollar fee or Paris.")
    return approving_judgement(messages)


def open_session(models: dict[str, ScriptedChatModel], **settings: Any) -> Session:
    return Session(Settings(seed=7, **settings), models=models, embedding_function=HashingEmbeddingFunction()).open()


def test_all_grounded_turns_make_an_accepted_conversation(session: Session, document: Document) -> None:
    conversation = run(session, document)
    assert conversation.accepted, conversation.rejection_reason
    assert len(conversation.turns) == 2 * len(conversation.path)
    assert [t.role for t in conversation.turns] == ["user", "assistant"] * len(conversation.path)
    assert [t.link for t in conversation.turns if t.role == "user"] == conversation.path
    for turn in conversation.turns:
        if turn.role == "assistant":
            assert turn.verdict is not None and turn.verdict.accepted
            assert turn.attempts == 1
            assert turn.passage_ids and all(pid.startswith(document.id + "::") for pid in turn.passage_ids)
            assert all(pid in conversation.passages for pid in turn.passage_ids)
    assert conversation.usage["assistant"].requests == len(conversation.path)
    assert conversation.models == {
        "user": "scripted-user",
        "assistant": "scripted-assistant",
        "critic": "scripted-critic",
    }
    assert conversation.failures == []


def test_invented_fact_is_rejected_then_the_regenerated_answer_passes(document: Document) -> None:
    models = scripted_models()
    honest = models["assistant"].script
    calls = {"n": 0}

    def invents_once(messages: list[BaseMessage]) -> str:
        calls["n"] += 1
        return INVENTED if calls["n"] == 2 else honest(messages)  # type: ignore[operator]

    models["assistant"] = ScriptedChatModel(script=invents_once, model_name="inventive")
    models["critic"] = ScriptedChatModel(script=critic_that_rejects_invented, model_name="judge")
    with open_session(models) as session:
        conversation = run(session, document)
    assert conversation.accepted, conversation.rejection_reason
    second = [t for t in conversation.turns if t.role == "assistant"][1]
    assert second.attempts == 2
    assert "Paris" not in second.content
    assert len(second.rejected_attempts) == 1
    rejected = second.rejected_attempts[0]
    assert rejected.content == INVENTED
    assert not rejected.verdict.accepted and rejected.verdict.rejection in {"not_grounded", "unfaithful"}
    assert "975" in rejected.verdict.reasons
    regeneration_prompt = models["assistant"].calls[2][0].content
    assert "fact-checker rejected your previous reply" in regeneration_prompt


def test_a_reply_that_repeats_an_earlier_one_is_regenerated_with_the_reason(document: Document) -> None:
    models = scripted_models()
    honest = models["assistant"].script
    replies: list[str] = []

    def repeats_itself_once(messages: list[BaseMessage]) -> str:
        reply = replies[0] if len(replies) == 1 else honest(messages)  # type: ignore[operator]
        replies.append(reply)
        return reply

    models["assistant"] = ScriptedChatModel(script=repeats_itself_once, model_name="stuck")
    with open_session(models) as session:
        conversation = run(session, document)
    assert conversation.accepted, conversation.rejection_reason
    first, second = [t for t in conversation.turns if t.role == "assistant"][:2]
    assert second.attempts == 2 and second.content != first.content
    rejected = second.rejected_attempts[0]
    assert rejected.content == first.content
    assert rejected.verdict.rejection == "does_not_answer" and "repeats an earlier reply" in rejected.verdict.reasons
    assert "repeats an earlier reply" in models["assistant"].calls[2][0].content  # the regeneration is told why


def test_answer_that_never_passes_rejects_the_conversation_with_reason_and_outputs(document: Document) -> None:
    models = scripted_models()
    models["assistant"] = ScriptedChatModel(script=lambda m: INVENTED, model_name="inventive")
    models["critic"] = ScriptedChatModel(script=critic_that_rejects_invented, model_name="judge")
    with open_session(models, max_assistant_retries=2) as session:
        conversation = run(session, document)
    assert not conversation.accepted
    assert conversation.rejection in {"not_grounded", "unfaithful"}
    assert "975" in (conversation.rejection_reason or "")
    assert len(conversation.turns) == 2
    failed = conversation.turns[1]
    assert failed.content == INVENTED
    assert failed.attempts == 3
    assert len(failed.rejected_attempts) == 2
    assert failed.verdict is not None and failed.verdict.judge is not None
    assert failed.verdict.judge["grounded"] is False
    assert len(models["critic"].calls) == 3


def test_unparseable_critic_output_is_retried_then_recorded_without_exception(document: Document) -> None:
    models = scripted_models()
    models["critic"] = ScriptedChatModel(script=lambda m: "Looks fine to me!", model_name="chatty-judge")
    with open_session(models, max_parse_retries=2) as session:
        conversation = run(session, document)
    assert not conversation.accepted
    assert conversation.rejection == "critic_failed"
    assert len(models["critic"].calls) == 3
    failure = next(f for f in conversation.failures if f.stage == "critic")
    assert "unparseable GroundedJudgement" in failure.error
    assert failure.raw_output.count("Looks fine to me!") == 3


def test_out_of_role_user_turn_is_regenerated(document: Document) -> None:
    models = scripted_models()
    good_user = models["user"].script
    calls = {"n": 0}

    def first_answers_itself(messages: list[BaseMessage]) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            return "Sure! According to the document, you must report a change of address within ten days."
        return good_user(messages)  # type: ignore[operator]

    models["user"] = ScriptedChatModel(script=first_answers_itself, model_name="confused-user")
    with open_session(models) as session:
        conversation = run(session, document)
    assert conversation.accepted
    assert conversation.turns[0].attempts == 2
    assert not conversation.turns[0].content.startswith("Sure")


def test_conversation_round_trips_through_json_and_gives_training_messages(
    session: Session, document: Document
) -> None:
    conversation = run(session, document)
    restored = Conversation.model_validate_json(conversation.model_dump_json())
    assert restored == conversation
    messages = training_messages(conversation, get_task(conversation.task))
    assert messages[0]["role"] == "system"
    assert "<passage id=" in messages[0]["content"]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * len(conversation.path)
    assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) and m["content"] for m in messages)
    json.dumps({"messages": messages})
    limited = training_messages(conversation, get_task(conversation.task), max_passages=1)
    assert limited[0]["content"].count("<passage id=") == 1


def test_ids_are_deterministic_and_depend_on_seed_and_settings(document: Document) -> None:
    with Session(Settings(seed=7), models=scripted_models(), embedding_function=HashingEmbeddingFunction()) as one:
        first = run(one, document, seed=1)
        again = run(one, document, seed=1)
        other_seed = run(one, document, seed=2)
    with Session(Settings(top_k=5), models=scripted_models(), embedding_function=HashingEmbeddingFunction()) as two:
        other_settings = run(two, document, seed=1)
    assert first.id == again.id
    assert first.path == again.path
    assert first.id != other_seed.id
    assert first.id != other_settings.id
    other_models = scripted_models()
    other_models["assistant"] = ScriptedChatModel(script=other_models["assistant"].script, model_name="another-model")
    with Session(Settings(seed=7), models=other_models, embedding_function=HashingEmbeddingFunction()) as three:
        other_model = run(three, document, seed=1)
    assert first.id != other_model.id  # a chat model passed in counts by its name
    with Session(models=scripted_models(), embedding_function=HashingEmbeddingFunction()) as defaults:
        assert run(defaults, document, seed=1).id  # no settings at all: the defaults


def test_a_calibration_file_in_the_settings_is_used_and_its_numbers_shape_the_ids(
    document: Document, tmp_path: Path
) -> None:
    shipped = load_calibration()
    impossible = tmp_path / "impossible.toml"  # same version label, one number changed: nothing can pass
    write_calibration(shipped.model_copy(update={"threshold": 1.0}), impossible)

    def simulate_with(**settings: Any) -> Conversation:
        with Session(
            Settings(**settings), models=scripted_models(), embedding_function=HashingEmbeddingFunction()
        ) as s:
            return run(s, document, seed=1)

    usual = simulate_with()
    strict = simulate_with(critic_calibration=str(impossible))
    assert usual.accepted and not strict.accepted
    assert strict.rejection == "low_score" and "threshold 1.00" in (strict.rejection_reason or "")
    assert strict.id != usual.id and strict.settings_fingerprint != usual.settings_fingerprint


def test_accepted_prefix_policy_keeps_the_turns_before_a_failure(document: Document) -> None:
    models = scripted_models()
    honest = models["assistant"].script
    calls = {"n": 0}

    def invents_from_the_fourth(messages: list[BaseMessage]) -> str:
        calls["n"] += 1
        return INVENTED if calls["n"] >= 4 else honest(messages)  # type: ignore[operator]

    models["assistant"] = ScriptedChatModel(script=invents_from_the_fourth, model_name="tiring")
    models["critic"] = ScriptedChatModel(script=critic_that_rejects_invented, model_name="judge")
    with open_session(models, acceptance="accepted_prefix") as session:
        conversation = run(session, document, seed=3)
    assert len(conversation.path) > 3
    assert conversation.accepted
    assert "truncated" in conversation.flags
    assert conversation.exchanges == 3
    assert all(t.verdict.accepted for t in conversation.turns if t.verdict)


@pytest.mark.parametrize("flow", ["factoid_short", "deep_dive"])
def test_other_shipped_flows_run(session: Session, wiki_document: Document, flow: str) -> None:
    conversation = run(session, wiki_document, flow=flow)
    assert conversation.accepted
    assert conversation.flow == flow
    assert conversation.exchanges == len(conversation.path)


def test_an_accepted_exchange_is_committed_in_the_critics_step(session: Session, document: Document) -> None:
    """Routing by `Command`: a conversation of n exchanges takes plan, 4 steps per exchange and finish, not a
    separate step per router or per commit."""
    from codi_agents.simulation._graph import build_graph, recursion_limit

    flow, persona = load_flow("grounded_qa"), load_persona("curious_student")
    state = {"document": document, "passages": session.prepare(document), "persona": persona, "flow": flow, "seed": 7}
    config = {"recursion_limit": recursion_limit(session.settings, flow.max_turns)}

    async def steps() -> tuple[list[str], dict[str, Any]]:
        graph, names, last = build_graph(session.task), [], {}
        async for chunk in graph.astream(state, config=config, context=session.context, stream_mode="updates"):
            names.extend(chunk)
            last = next(iter(chunk.values())) or last
        return names, last

    names, _ = asyncio.run(steps())
    exchanges = names.count("critic")
    assert exchanges >= 1 and "commit" not in names
    assert names == ["plan", *["user", "retrieve", "assistant", "critic"] * exchanges, "finish"]


def test_a_step_refuses_two_writes_of_a_reduced_key() -> None:
    """`then` lays an inlined node's update over the first one's; for a key with a reducer (turns, usage) that
    would drop a write instead of adding it, so it is refused."""
    from langgraph.runtime import Runtime

    from codi_agents.simulation._graph import then

    def first(state: dict[str, Any]) -> dict[str, Any]:
        return {"failures": ["a"], "step": 1}

    def second(state: dict[str, Any]) -> dict[str, Any]:
        return {"failures": ["b"]}

    step = then(first, lambda state: "again", inline={"again": (second, lambda state: "finish")})
    with pytest.raises(RuntimeError, match=r"second writes \['failures'\] in the step of first"):
        asyncio.run(step({}, Runtime(context=None)))
    fine = then(
        first, lambda state: "again" if state["step"] == 1 else "x", inline={"again": (lambda s: {}, lambda s: "y")}
    )
    command = asyncio.run(fine({}, Runtime(context=None)))
    assert (command.goto, command.update) == ("y", {"failures": ["a"], "step": 1})
