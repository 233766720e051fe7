"""A labelled item as the critic sees it: knowledge as passages, history as the conversation, on a neutral link."""

from __future__ import annotations

from codi_agents._record import Turn
from codi_agents._security import detect_injections, injection_flags
from codi_agents.evaluation._labelled import LabelledItem
from codi_agents.inputs._documents import Document
from codi_agents.inputs._flows import Link
from codi_agents.inputs._passages import Passage
from codi_agents.inputs._personas import Persona
from codi_agents.tasks._base import PromptContext, Task

EVALUATION_LINK = Link(
    kind="answerable",
    instruction="Continue the conversation about the passage.",
    assistant_guidance="Reply from the passages only.",
)
"""Labelled items carry no flow: each reply is judged as an answerable turn that must rest on the passages."""
EVALUATION_PERSONA = Persona(
    name="evaluation_user",
    description="A person talking with an assistant about a passage.",
    goals=["learn what the passage says"],
    expertise="none in particular",
    style="casual",
)


def item_context(item: LabelledItem, task: Task) -> PromptContext:
    """The critic's view of a labelled item: knowledge as passages, history as the conversation."""
    detected = detect_injections(item.knowledge)  # as a run's index flags passages
    passages = [
        Passage(
            id=f"{item.id}::{index}",
            doc_id=item.id,
            index=index,
            text=text,
            flags=injection_flags(text, verdict),
        )
        for index, (text, verdict) in enumerate(zip(item.knowledge, detected, strict=True))
    ]
    earlier = item.history[:-1]
    roles = ["user" if (len(earlier) - i) % 2 == 0 else "assistant" for i in range(len(earlier))]
    return PromptContext(
        task=task,
        document=Document(id=item.id, title=str(item.meta.get("title", "")), text="\n\n".join(item.knowledge)),
        persona=EVALUATION_PERSONA,
        link_name="evaluation",
        link=EVALUATION_LINK,
        history=[Turn(role=role, content=text) for role, text in zip(roles, earlier, strict=True)],  # type: ignore[arg-type]
        turn_number=len(earlier) // 2,
        passages=passages,
        question=item.history[-1] if item.history else "",
        answer=item.response,
    )
