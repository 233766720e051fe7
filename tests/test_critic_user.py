"""The user side of the critic: each link kind realised or not, staying in role, and realisation rates."""

from __future__ import annotations

import asyncio

import pytest

from codi_agents import Conversation, Document, load_flow, load_persona
from codi_agents._record import Turn, UserCheck
from codi_agents.critic import CriticInputs, load_calibration
from codi_agents.critic._signals import grounding_signals
from codi_agents.critic._user_turns import link_realisation, user_turn_signals
from codi_agents.inputs._passages import Passage
from codi_agents.simulation._session import Session
from codi_agents.tasks.grounded_qa import grounded_user_check
from codi_agents.testing import HashingEmbeddingFunction

PASSAGE = Passage(
    id="doc::0",
    doc_id="doc",
    index=0,
    text=(
        "You must report a change of address to the DMV within ten days of moving. "
        "You can update your address online, by mail or in person. "
        "Registration renewals cost 26 dollars and can be done online."
    ),
)
HISTORY = [
    Turn(role="user", content="How soon must I report a change of address?"),
    Turn(role="assistant", content="Within ten days of moving."),
]
FLOW = load_flow("grounded_qa")


def check(link_name: str, message: str, *, history: list[Turn] | None = None) -> UserCheck:
    link = FLOW.links[link_name]
    turns = HISTORY if history is None else history
    return grounded_user_check(
        CriticInputs(
            question=message,
            answer="",
            passages=[PASSAGE],
            history=turns,
            link_name=link_name,
            link=link,
            calibration=load_calibration(),
            judge_weight=0.0,
            signals=grounding_signals("", [PASSAGE], message, HashingEmbeddingFunction()),
            user_signals=user_turn_signals(message, link, [turn.content for turn in turns]),
        )
    )


@pytest.mark.parametrize(
    ("link", "message", "realised"),
    [
        ("coreference_followup", "Can I do it online?", True),
        ("coreference_followup", "Can I update my address online?", False),
        ("elliptical_followup", "And by mail?", True),
        ("elliptical_followup", "Can I also update my address with the DMV by sending a letter in the mail?", False),
        ("yes_no", "Is there a fee for renewing a registration?", True),
        ("yes_no", "What does renewing a registration cost?", False),
        ("why_how", "How do I update my address?", True),
        ("why_how", "What is the deadline?", False),
        ("closing", "Thanks, that is all I needed.", True),
        ("closing", "What else does the page cover about renewals?", False),
        ("unanswerable", "What is the phone number of the Albany office?", True),
        ("unanswerable", "How many days do I have to report a change of address to the DMV?", False),
        ("topic_shift", "What does a registration renewal cost?", True),
        ("topic_shift", "How soon do I have to report my change of address?", False),
        ("factual_followup", "How much does renewal cost?", True),
        ("factual_followup", "Renewal costs.", False),
    ],
)
def test_each_link_kind_is_checked(link: str, message: str, realised: bool) -> None:
    result = check(link, message)
    assert result.link_realised is realised, result.reasons
    assert result.in_role
    assert result.reasons.startswith("link realised" if realised else "link not realised")


def test_a_coreference_follow_up_needs_something_to_refer_back_to() -> None:
    assert not check("coreference_followup", "Can I do it online?", history=[]).link_realised


def test_an_unanswerable_question_that_the_passages_answer_names_the_failed_check() -> None:
    result = check("unanswerable", "How many days do I have to report a change of address to the DMV?")
    assert "asks something the passages do not answer" in result.reasons


@pytest.mark.parametrize(
    "message",
    [
        "Sure! According to the document, you must report a change of address within ten days.",
        "How long do I have? You have ten days after moving to tell the DMV, and you can do it online or by mail.",
        "The DMV requires every driver to report a new address within ten days of moving, online, by mail or in "
        "person, and renewals cost 26 dollars which can also be paid online.",
        "How can I help you today with your DMV questions?",
    ],
)
def test_user_turns_that_answer_or_talk_like_the_assistant_are_out_of_role(message: str) -> None:
    result = check("factual_followup", message)
    assert not result.in_role
    assert result.signals["words"] > 0


@pytest.mark.parametrize(
    "message",
    [
        "How soon must I report a change of address?",
        "how soon must i report a change of address",
        "Within ten days of moving.",
    ],
)
def test_a_user_turn_that_repeats_an_earlier_message_is_out_of_role(message: str) -> None:
    result = check("factual_followup", message)
    assert not result.in_role
    assert result.reasons == "the user message repeats an earlier message of the conversation"


def test_an_ordinary_question_is_in_role() -> None:
    assert check("factual_followup", "How much does it cost to renew a registration?").in_role


def test_link_realisation_rates_over_conversations(session: Session, document: Document) -> None:
    conversations = [
        asyncio.run(session.simulate(document, load_persona("curious_student"), FLOW, seed=seed)) for seed in (1, 2)
    ]
    rates = link_realisation(conversations)
    user_turns = [turn for c in conversations for turn in c.turns if turn.role == "user"]
    assert sum(rate.turns for rate in rates.values()) == len(user_turns)
    assert set(rates) == {turn.link for turn in user_turns}
    for name, rate in rates.items():
        turns = [turn for turn in user_turns if turn.link == name]
        assert rate.realised == sum(1 for turn in turns if turn.check and turn.check.link_realised)
        assert rate.rate == pytest.approx(rate.realised / rate.turns)
        assert 0 <= rate.in_role_rate <= 1
    assert list(rates) == sorted(rates)


def test_link_realisation_counts_by_hand() -> None:
    def user(link: str, realised: bool, in_role: bool = True) -> Turn:
        return Turn(
            role="user",
            content="?",
            link=link,
            check=UserCheck(reasons="", link_realised=realised, in_role=in_role),
        )

    base = Conversation(
        id="c", task="grounded_qa", doc_id="d", persona=load_persona("curious_student"), flow="f", path=[]
    )
    first = base.model_copy(
        update={"turns": [user("yes_no", True), user("closing", True), Turn(role="assistant", content="x")]}
    )
    second = base.model_copy(update={"turns": [user("yes_no", False, in_role=False), Turn(role="user", content="?")]})
    rates = link_realisation([first, second])
    assert list(rates) == ["closing", "yes_no"]
    assert (rates["yes_no"].turns, rates["yes_no"].realised, rates["yes_no"].in_role) == (2, 1, 1)
    assert rates["yes_no"].rate == 0.5 and rates["closing"].rate == 1.0
    assert link_realisation([]) == {}
