"""Scripted user, assistant and critic that always make a valid grounded conversation, instantly.

The user asks about words of the document view it is shown, the assistant quotes the first
sentence of its best passage, and the critic approves. Used by tests, examples and the benchmark
that measures codi's own cost per turn.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import BaseMessage

from codi_agents.testing._chat import ScriptedChatModel

_DOCUMENT = re.compile(r"<document>\n(.*?)\n</document>", re.S)
_PASSAGE = re.compile(r"<passage id=\"[^\"]+\"[^>]*>\n(.*?)\n</passage>", re.S)
_WORD = re.compile(r"[a-z]+")
_INSTRUCTION = re.compile(r"\(Your next message: (.*?)\)\s*$", re.S)


def scripted_user(messages: list[BaseMessage]) -> str:
    """A question fitting the instruction in the last message, about words of the document view."""
    instruction_match = _INSTRUCTION.search(str(messages[-1].content))
    instruction = instruction_match.group(1).lower() if instruction_match else ""
    document = _DOCUMENT.search(str(messages[0].content))
    words = [word for word in _WORD.findall(document.group(1).lower() if document else "") if len(word) > 3]
    asked = sum(1 for message in messages if message.type == "ai")
    topic = " ".join(words[asked * 3 : asked * 3 + 2]) if len(words) > asked * 3 + 1 else "this"
    if "end the conversation" in instruction or "thank" in instruction:
        return "Thanks, that is all I needed."
    if "pronoun" in instruction:
        return "Can you tell me more about it?"
    if "leaves out" in instruction:
        return "And the details?"
    if "yes-or-no" in instruction:
        return f"Is there anything about {topic}?"
    if "not answer" in instruction:
        return "What is the phone number of the main office?"
    if "why" in instruction or "how" in instruction:
        return f"How does {topic} work?"
    return f"What does the document say about {topic}?"


def scripted_assistant(messages: list[BaseMessage]) -> str:
    """The first sentence of the first passage in the system prompt."""
    passage = _PASSAGE.search(str(messages[0].content))
    if passage is None:
        return "The document does not say."
    text = passage.group(1).strip()
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first[:400]


def approving_judgement(messages: list[BaseMessage]) -> dict[str, Any]:
    """A judge's verdict that passes the turn."""
    del messages
    return {
        "reasons": "Every claim is stated in the passages.",
        "passages_answer_question": True,
        "grounded": True,
        "faithful": True,
        "answers_question": True,
        "abstained": False,
        "follows_instructions_in_passages": False,
        "user_in_role": True,
        "user_link_realised": True,
        "score": 0.95,
    }


def scripted_models(delay_seconds: float = 0.0) -> dict[str, ScriptedChatModel]:
    """User, assistant and critic models that produce an accepted conversation on any document."""
    return {
        "user": ScriptedChatModel(script=scripted_user, model_name="scripted-user", delay_seconds=delay_seconds),
        "assistant": ScriptedChatModel(
            script=scripted_assistant, model_name="scripted-assistant", delay_seconds=delay_seconds
        ),
        "critic": ScriptedChatModel(
            script=approving_judgement, model_name="scripted-critic", delay_seconds=delay_seconds
        ),
    }
