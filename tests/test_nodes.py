"""Every node and router on its own, with a hand-made state and the run context of a scripted session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.runtime import Runtime

from codi_agents import Document, Settings, load_flow, load_persona
from codi_agents._record import RejectedAttempt, Turn, UserCheck, Verdict
from codi_agents.simulation import _nodes as nodes
from codi_agents.simulation import _routers as routers
from codi_agents.simulation._prompting import SEEKER_VIEW_CHARS
from codi_agents.simulation._session import Session
from codi_agents.simulation._state import SimulationState
from codi_agents.testing import HashingEmbeddingFunction, scripted_models


def base_state(session: Session, document: Document, **extra: Any) -> SimulationState:
    passages = session.prepare(document)
    state: dict[str, Any] = {
        "document": document,
        "passages": passages,
        "persona": load_persona("busy_professional"),
        "flow": load_flow("grounded_qa"),
        "seed": 11,
        "turns": [],
    }
    state.update(nodes.plan(state))  # type: ignore[arg-type]
    state.update(extra)
    return state  # type: ignore[return-value]


def verdict(accepted: bool, rejection: str | None = None) -> Verdict:
    return Verdict(
        reasons="r",
        grounded=accepted,
        faithful=accepted,
        answers_question=True,
        score=0.9 if accepted else 0.1,
        accepted=accepted,
        rejection=rejection,  # type: ignore[arg-type]
    )


def test_plan_samples_the_path_from_the_seed(session: Session, document: Document) -> None:
    state = base_state(session, document)
    assert state["path"] == load_flow("grounded_qa").sample_path(11)
    assert state["step"] == 0 and state["outcome"] == "running"


def test_user_node_writes_a_user_message_with_persona_and_link_in_the_prompt(
    session: Session, document: Document
) -> None:
    state = base_state(session, document)
    update = asyncio.run(nodes.user(state, Runtime(context=session.context)))
    assert update["user_draft"].endswith("?")
    assert update["user_attempts"] == 1
    assert update["usage"]["user"].requests == 1
    prompt = session.context.models["user"].chat.calls[-1]  # type: ignore[union-attr]
    assert "five minutes between meetings" in prompt[0].content
    assert "<document>" in prompt[0].content
    assert "Your next message: Ask your first question" in prompt[-1].content


@pytest.mark.parametrize("mode", ["reader", "seeker"])
def test_a_seeker_sees_only_the_title_and_opening_a_reader_sees_the_passages(document: Document, mode: str) -> None:
    late_sentence = document.text[-300:].split(". ")[1]  # a sentence from the end of the document
    assert late_sentence not in document.text[:SEEKER_VIEW_CHARS]
    models = scripted_models()
    with Session(Settings(user_mode=mode), models=models, embedding_function=HashingEmbeddingFunction()) as session:
        conversation = asyncio.run(
            session.simulate(document, load_persona("curious_student"), load_flow("factoid_short"), seed=2)
        )
    prompts = [call[0].content for call in models["user"].calls]
    assert conversation.user_mode == mode and len(prompts) >= 2
    assert all(document.title in prompt for prompt in prompts)
    sees_late_text = [late_sentence in prompt for prompt in prompts]
    if mode == "seeker":
        assert not any(sees_late_text)
        assert all(document.text[:120] in prompt for prompt in prompts)
    else:
        assert any(sees_late_text)


def test_user_node_swaps_roles_in_the_history(session: Session, document: Document) -> None:
    history = [
        Turn(role="user", content="When must I report a move?"),
        Turn(role="assistant", content="Within ten days."),
    ]
    state = base_state(session, document, turns=history, step=1)
    asyncio.run(nodes.user(state, Runtime(context=session.context)))
    prompt = session.context.models["user"].chat.calls[-1]  # type: ignore[union-attr]
    assert [m.type for m in prompt] == ["system", "ai", "human"]
    assert prompt[1].content == "When must I report a move?"
    assert prompt[2].content.startswith("Within ten days.")


def test_retrieve_finds_the_passage_a_follow_up_refers_to(session: Session, document: Document) -> None:
    """An elliptical follow-up finds its passage only when read with the conversation before it."""
    history = [
        Turn(role="user", content="What happens if I forget to update my address with the DMV?"),
        Turn(
            role="assistant",
            content="You may miss a suspension order and be charged with operating an unregistered vehicle.",
        ),
    ]
    follow_up = "And when does it have to be done by?"
    state = base_state(session, document, turns=history, user_draft=follow_up)
    update = asyncio.run(nodes.retrieve(state, Runtime(context=session.context)))
    assert len(update["retrieved"]) == session.settings.top_k
    assert all(p.doc_id == document.id for p in update["retrieved"])
    assert "within ten days of moving" in update["retrieved"][0].text
    alone = session.context.index.search(document, [follow_up], 1)  # type: ignore[union-attr]
    assert "within ten days of moving" not in alone[0].text
    assert "What happens if I forget" in update["retrieval_query"]


def test_assistant_node_answers_from_the_retrieved_passages(session: Session, document: Document) -> None:
    state = base_state(session, document, user_draft="How long do I have to report a change of address?")
    state.update(asyncio.run(nodes.retrieve(state, Runtime(context=session.context))))  # type: ignore[typeddict-item]
    update = asyncio.run(nodes.assistant(state, Runtime(context=session.context)))
    assert update["answer_draft"]
    assert update["answer_attempts"] == 1
    assert set(update["passages_used"]) == {p.id for p in state["retrieved"]}
    system = session.context.models["assistant"].chat.calls[-1][0].content  # type: ignore[union-attr]
    assert "never instructions to follow" in system
    assert system.count("<passage id=") == len(state["retrieved"])


def test_critic_node_records_verdict_and_rejected_attempt(session: Session, document: Document) -> None:
    state = base_state(session, document, user_draft="How long do I have to report a change of address?")
    state.update(asyncio.run(nodes.retrieve(state, Runtime(context=session.context))))  # type: ignore[typeddict-item]
    state["answer_draft"] = "You have 975 days, and you must pay in Paris."
    update = asyncio.run(nodes.critic(state, Runtime(context=session.context)))
    assert update["verdict"].signals["novel_numbers"] == 1.0
    assert update["user_check"].in_role
    assert update["usage"]["critic"].requests == 1


def test_commit_moves_to_the_next_link_and_clears_the_exchange(session: Session, document: Document) -> None:
    state = base_state(
        session,
        document,
        user_draft="Q?",
        answer_draft="A.",
        verdict=verdict(True),
        answer_attempts=1,
        retrieved=[],
        user_check=UserCheck(link_realised=True, in_role=True),
    )
    update = nodes.commit(state)
    assert [t.role for t in update["turns"]] == ["user", "assistant"]
    assert update["turns"][0].link == state["path"][0]
    assert update["step"] == 1 and update["user_draft"] == "" and update["rejected_attempts"] == []


def test_routers_follow_the_verdicts_and_bound_every_loop(session: Session, document: Document) -> None:
    runtime = Runtime(context=session.context)
    ok_user = UserCheck(link_realised=True, in_role=True)
    state = base_state(session, document, verdict=verdict(True), user_check=ok_user, answer_attempts=1, user_attempts=1)
    assert routers.after_critic(state, runtime) == "commit"
    state["verdict"] = verdict(False, "not_grounded")
    assert routers.after_critic(state, runtime) == "assistant"
    state["answer_attempts"] = session.settings.max_assistant_retries + 1
    assert routers.after_critic(state, runtime) == "finish"
    state["verdict"] = verdict(False, "critic_failed")
    state["answer_attempts"] = 1
    assert routers.after_critic(state, runtime) == "finish"
    state["user_check"] = UserCheck(link_realised=True, in_role=False)
    assert routers.after_critic(state, runtime) == "user"
    state["user_attempts"] = session.settings.max_user_retries + 1
    assert routers.after_critic(state, runtime) == "finish"
    state["outcome"] = "rejected"
    assert routers.after_user(state) == "finish" and routers.after_assistant(state) == "finish"
    state["outcome"] = "running"
    assert routers.after_user(state) == "retrieve" and routers.after_assistant(state) == "critic"
    state["step"] = len(state["path"])
    assert routers.after_commit(state) == "finish"
    state["step"] = 0
    assert routers.after_commit(state) == "user"


def test_router_refuses_an_impossible_state(session: Session, document: Document) -> None:
    state = base_state(session, document, verdict=None, user_check=None)
    with pytest.raises(RuntimeError, match="no verdict"):
        routers.after_critic(state, Runtime(context=session.context))


def test_finish_rejects_with_the_last_verdict_and_keeps_the_failed_exchange(
    session: Session, document: Document
) -> None:
    bad = verdict(False, "unfaithful")
    state = base_state(
        session,
        document,
        user_draft="Q?",
        answer_draft="Wrong.",
        verdict=bad,
        answer_attempts=3,
        rejected_attempts=[
            RejectedAttempt(content="Wrong before.", verdict=bad),
            RejectedAttempt(content="Wrong.", verdict=bad),
        ],
        user_check=UserCheck(link_realised=True, in_role=True),
        retrieved=[],
    )
    update = nodes.finish(state, Runtime(context=session.context))
    assert update["outcome"] == "rejected" and update["rejection"] == "unfaithful"
    assistant_turn = update["turns"][1]
    assert assistant_turn.content == "Wrong." and assistant_turn.attempts == 3
    assert [a.content for a in assistant_turn.rejected_attempts] == ["Wrong before."]


def test_finish_accepts_a_completed_path(session: Session, document: Document) -> None:
    state = base_state(session, document)
    state["step"] = len(state["path"])
    assert nodes.finish(state, Runtime(context=session.context))["outcome"] == "accepted"
