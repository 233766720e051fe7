"""Scripted user, assistant and critic that always make a valid grounded conversation, instantly.

The user asks about words of the document view it is shown, the assistant quotes the first
sentence of its best passage (of the next one, rather than repeat itself), and the critic approves.
Used by tests, examples and the benchmark that measures codi's own cost per turn.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import BaseMessage

from codi_agents.critic._text import repeats
from codi_agents.tasks.grounded_qa.rules import REPEATED_REPLY
from codi_agents.testing._chat import ScriptedChatModel

_DOCUMENT = re.compile(r"<document>\n(.*?)\n</document>", re.S)
_PASSAGE = re.compile(r"<passage id=\"[^\"]+\"[^>]*>\n(.*?)\n</passage>", re.S)
_WORD = re.compile(r"[a-z]+")
_THANKS = re.compile(r"^\s*thanks?\b", re.IGNORECASE)
_INSTRUCTION = re.compile(r"\(Your next message: (.*?)\)\s*$", re.S)


def scripted_user(messages: list[BaseMessage]) -> str:
    """A question fitting the instruction in the last message, about words of the document view; never one it
    (or the assistant) has already said in this conversation."""
    instruction_match = _INSTRUCTION.search(str(messages[-1].content))
    instruction = instruction_match.group(1).lower() if instruction_match else ""
    document = _DOCUMENT.search(str(messages[0].content))
    words = [word for word in _WORD.findall(document.group(1).lower() if document else "") if len(word) > 3]
    asked = sum(1 for message in messages if message.type == "ai")
    said = [str(message.content) for message in messages[1:]]
    for variant in range(asked, asked + 12):
        question = _question(instruction, words, variant)
        if not repeats(question, said):
            return question
    return question


def _question(instruction: str, words: list[str], asked: int) -> str:
    topic = (
        " ".join(words[asked * 3 : asked * 3 + 2])
        if len(words) > asked * 3 + 1
        else _varied(("this", "that part", "the rest", "the other points", "anything else"), asked)
    )
    if "end the conversation" in instruction or "thank" in instruction:
        return "Thanks, that is all I needed."
    if "pronoun" in instruction:
        return _varied(("Can you tell me more about it?", "What else is there to know about it?"), asked)
    if "leaves out" in instruction:
        return _varied(("And the details?", "And after that?", "And the rest?"), asked)
    if "yes-or-no" in instruction:
        return f"Is there anything about {topic}?"
    if "not answer" in instruction:
        return _varied(
            ("What is the phone number of the main office?", "Who was the first director of the office?"), asked
        )
    if "why" in instruction or "how" in instruction:
        return f"How does {topic} work?"
    return f"What does the document say about {topic}?"


_RESTATEMENTS = (
    "The document says only this about it:",
    "All it adds on that point is this:",
    "Beyond what I said, the passage repeats that",
)


def _varied(questions: tuple[str, ...], asked: int) -> str:
    """One of several wordings, so that a user who asks this kind of question again does not repeat itself."""
    return questions[asked % len(questions)]


def scripted_assistant(messages: list[BaseMessage]) -> str:
    """The first sentence of the first passage in the system prompt, or of the next passage when that one would
    repeat a reply of the conversation (then other sentences, then restatements). Told that its reply repeated an
    earlier one that the history it is shown no longer holds, it skips one more. A user's thanks gets a welcome."""
    system = str(messages[0].content)
    if _THANKS.search(str(messages[-1].content)):
        return "You're welcome, glad I could help."
    passages = _PASSAGE.findall(system)
    if not passages:
        return "The document does not say."
    sentences = [[s[:400] for s in re.split(r"(?<=[.!?])\s", text.strip()) if s.strip()] for text in passages]
    firsts = [found[0] for found in sentences if found]
    others = [sentence for found in sentences for sentence in found[1:]]
    candidates = [*firsts, *others, *(f"{opening} {s}" for opening in _RESTATEMENTS for s in firsts + others)]
    said = [str(message.content) for message in messages if message.type == "ai"]
    fresh = [candidate for candidate in candidates if not repeats(candidate, said)] or candidates
    return fresh[1] if REPEATED_REPLY in system and len(fresh) > 1 else fresh[0]


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
