"""What a conversational task declares: prompts per role, the judge's schema, the acceptance rule.

A `Task` is checked when it is created: every placeholder in its prompt templates must be one the
core provides for that template or one the task declares in `variables`, so a typo fails at import
rather than after an hour of generation (as distilabel checks its templates).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from codi_agents.errors import TaskError

if TYPE_CHECKING:
    from langgraph.graph import StateGraph

    from codi_agents.critic.inputs import CriticInputs
    from codi_agents.passages import Passage
    from codi_agents.prompting import PromptContext
    from codi_agents.record import Conversation, UserCheck, Verdict

TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

CORE_VARIABLES: Mapping[str, frozenset[str]] = {
    "user_system": frozenset({"persona", "persona_name", "document", "document_title", "task_description"}),
    "user_turn": frozenset({"instruction", "link", "phenomena", "turn_number"}),
    "assistant_system": frozenset({"passages", "guidance", "document_title", "task_description"}),
    "critic_system": frozenset({"document_title", "task_description"}),
    "critic_turn": frozenset(
        {"passages", "history", "question", "answer", "link", "link_kind", "instruction", "expectation"}
    ),
    "training_system": frozenset({"passages", "document_title"}),
}
"""The placeholders the core fills in each template."""


@dataclass(frozen=True)
class Prompts:
    """The task's prompt templates, in `str.format` syntax."""

    user_system: str
    """System prompt of the user simulator: persona, what it knows of the document, the rules."""
    user_turn: str
    """Appended to the last message the simulator sees: the current link's instruction."""
    assistant_system: str
    """System prompt of the grounded assistant: the retrieved passages and the rules."""
    critic_system: str
    """System prompt of the LLM judge: the rubric."""
    critic_turn: str
    """The judge's input for one turn: passages, history, question, answer, expectation."""
    training_system: str
    """System prompt of exported training conversations: the passages the answers rest on."""


@dataclass(frozen=True)
class Task:
    """A conversational task: prompts, judge schema and acceptance rules, default flow and personas."""

    name: str
    description: str
    prompts: Prompts
    judge_schema: type[BaseModel]
    """The typed output of the LLM judge for one assistant turn; reasons come first."""
    decide: Callable[[CriticInputs], Verdict]
    """Combines cheap signals and the judge's output into the turn's verdict (the acceptance rule)."""
    check_user: Callable[[CriticInputs], UserCheck]
    """Checks the user turn: planned link realised, stayed in role."""
    default_flow: str = "grounded_qa"
    persona_dirs: tuple[Path, ...] = ()
    """Folders searched for personas before the shipped `personas/`."""
    flow_dirs: tuple[Path, ...] = ()
    """Folders searched for flow graphs before the shipped `graphs/`."""
    default_personas: tuple[str, ...] = ()
    """Personas a batch run uses when its config names none; empty means every persona found."""
    variables: Mapping[str, Callable[[PromptContext], str]] = field(default_factory=dict)
    """Extra placeholders the task fills itself, by name."""
    graph_builder: Callable[[Task], StateGraph[Any, Any, Any, Any]] | None = None
    """Builds a different turn loop; default: the standard plan/user/retrieve/assistant/critic graph."""
    version: str = "1"
    """Bump when prompts or rules change: it enters the settings fingerprint."""

    def __post_init__(self) -> None:
        if not TASK_NAME.match(self.name):
            raise TaskError(f"Task name {self.name!r} is invalid: use lowercase letters, digits and underscores.")
        if not (isinstance(self.judge_schema, type) and issubclass(self.judge_schema, BaseModel)):
            raise TaskError(f"Task {self.name!r}: judge_schema must be a pydantic model class.")
        first = next(iter(self.judge_schema.model_fields), None)
        if first != "reasons":
            raise TaskError(
                f"Task {self.name!r}: the judge schema's first field must be `reasons` (got {first!r}), "
                "so that the model reasons before it decides."
            )
        for template_name, allowed in CORE_VARIABLES.items():
            template = getattr(self.prompts, template_name)
            unknown = placeholders(template, f"{self.name}.{template_name}") - allowed - set(self.variables)
            if unknown:
                raise TaskError(
                    f"Task {self.name!r}, prompt {template_name}: unknown placeholder(s) "
                    f"{', '.join('{' + name + '}' for name in sorted(unknown))}. "
                    f"Allowed: {', '.join(sorted(allowed | set(self.variables)))}; declare others in `variables`."
                )

    def training_system_prompt(self, conversation: Conversation, passages: list[Passage]) -> str:
        """The system prompt of an exported training conversation."""
        from codi_agents.prompting import render_passages

        return self.prompts.training_system.format(
            passages=render_passages(passages), document_title=conversation.doc_title or conversation.doc_id
        )


def placeholders(template: str, where: str) -> set[str]:
    """Field names used in a `str.format` template; malformed templates raise `TaskError`."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise TaskError(f"Prompt {where} is not a valid template: {exc}. Double literal braces: {{{{ }}}}.") from exc
    bad = [name for name in fields if not name.isidentifier()]
    if bad:
        raise TaskError(f"Prompt {where}: placeholders must be plain names, got {bad}.")
    return set(fields)
