"""What a conversational task declares: prompts per role, the judge's schema, the acceptance rules.

A `Task` is checked when it is created: every placeholder in its prompt templates must be one the
core provides for that template or one the task declares in `variables`, and the placeholders a
template cannot work without (the passages for the assistant, the reply for the judge ...) must be
there, so a typo fails at import rather than after an hour of generation (as distilabel checks its
templates).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from codi_agents._record import RejectionCategory, Turn, UserCheck, Verdict
from codi_agents.critic._inputs import CriticInputs
from codi_agents.errors import TaskError
from codi_agents.inputs._documents import Document
from codi_agents.inputs._flows import FlowGraph, Link
from codi_agents.inputs._passages import Passage
from codi_agents.inputs._personas import Persona

if TYPE_CHECKING:
    from langgraph.graph import StateGraph

TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

CORE_VARIABLES: Mapping[str, frozenset[str]] = {
    "user_system": frozenset({"persona", "persona_name", "document", "document_title", "task_description"}),
    "user_turn": frozenset({"instruction", "link", "phenomena", "turn_number"}),
    "assistant_system": frozenset({"passages", "guidance", "document_title", "task_description"}),
    "critic_system": frozenset({"document_title", "task_description"}),
    "critic_turn": frozenset({"passages", "history", "question", "answer", "link", "link_kind", "instruction"}),
    "training_system": frozenset({"passages", "document_title"}),
}
"""The placeholders the core fills in each template."""

EXPORT_TEMPLATES = frozenset({"training_system"})
"""Templates filled from a finished record, with no conversation in progress: core placeholders only."""

REQUIRED_VARIABLES: Mapping[str, frozenset[str]] = {
    "user_turn": frozenset({"instruction"}),
    "assistant_system": frozenset({"passages"}),
    "critic_turn": frozenset({"passages", "question", "answer"}),
    "training_system": frozenset({"passages"}),
}
"""Placeholders a template cannot do without: the flow's steering, the grounding, the reply under review."""


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
    """The judge's input for one turn: passages, history, question, answer (and the task's own, e.g. expectation)."""
    training_system: str
    """System prompt of exported training conversations: the passages the answers rest on."""


@dataclass(frozen=True)
class ConversationDraft:
    """A finished conversation before its outcome is decided: what a conversation-level rule sees."""

    document: Document
    """The document the conversation is grounded in."""
    persona: Persona
    """The simulated user."""
    flow: FlowGraph
    """The flow graph the path was sampled from."""
    path: list[str]
    """The sampled links (longer than the committed exchanges when `truncated`)."""
    turns: list[Turn]
    """The committed turns; every assistant turn in it passed the per-turn rule."""
    passages: dict[str, Passage]
    """Every passage shown to the assistant, by id."""
    truncated: bool = False
    """True when the accepted-prefix policy is about to keep only the turns before a failure."""

    @property
    def links(self) -> list[str]:
        """The links of the committed exchanges, in order."""
        return [turn.link or "" for turn in self.turns if turn.role == "user"]


@dataclass(frozen=True)
class ConversationCheck:
    """The outcome of a task's conversation-level rule."""

    accepted: bool
    reason: str = ""
    """Why, in a sentence; becomes the conversation's `rejection_reason` when it fails."""
    rejection: RejectionCategory = "does_not_answer"
    """The category recorded when it fails."""


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
    default_flow: str = ""
    """The flow graph a conversation follows when none is named (required: every task names one)."""
    accept_conversation: Callable[[ConversationDraft], ConversationCheck] | None = None
    """Checks the whole conversation once every exchange passed (e.g. "the customer's goal was reached");
    None accepts every conversation whose exchanges all passed."""
    persona_dirs: tuple[Path, ...] = ()
    """Folders searched for personas before the shipped `personas/`."""
    flow_dirs: tuple[Path, ...] = ()
    """Folders searched for flow graphs before the shipped `graphs/`."""
    default_personas: tuple[str, ...] = ()
    """Personas a batch run uses when its config names none; empty means every persona found."""
    default_persona: str = ""
    """The persona of a single conversation that names none; empty means the first of `default_personas`."""
    variables: Mapping[str, Callable[[PromptContext], str]] = field(default_factory=dict)
    """Extra placeholders the task fills itself, by name (e.g. `expectation`); a core name is overridden."""
    graph_builder: Callable[[Task], StateGraph[Any, Any, Any, Any]] | None = None
    """Builds a different turn loop; default: the standard plan/user/retrieve/assistant/critic graph."""
    version: str = "1"
    """Bump when prompts or rules change: it enters the settings fingerprint."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not TASK_NAME.match(self.name):
            raise TaskError(f"Task name {self.name!r} is invalid: use lowercase letters, digits and underscores.")
        if not isinstance(self.default_flow, str) or not self.default_flow:
            raise TaskError(
                f"Task {self.name!r} names no default flow: set `default_flow` to the flow graph its conversations "
                'follow when none is named (e.g. default_flow="grounded_qa").'
            )
        if not isinstance(self.prompts, Prompts):
            raise TaskError(f"Task {self.name!r}: prompts must be a Prompts, got {type(self.prompts).__name__}.")
        self._check_judge_schema()
        self._check_callables()
        for name in self.variables:
            if not name.isidentifier():
                raise TaskError(f"Task {self.name!r}: variable name {name!r} must be a plain identifier.")
        for template_name, core in CORE_VARIABLES.items():
            used = placeholders(getattr(self.prompts, template_name), f"{self.name}.{template_name}")
            allowed = core if template_name in EXPORT_TEMPLATES else core | set(self.variables)
            unknown = used - allowed
            if unknown:
                hint = (
                    "it is filled at export, where the task's own variables do not exist"
                    if template_name in EXPORT_TEMPLATES
                    else "declare others in `variables`"
                )
                raise TaskError(
                    f"Task {self.name!r}, prompt {template_name}: unknown placeholder(s) "
                    f"{', '.join('{' + name + '}' for name in sorted(unknown))}. "
                    f"Allowed: {', '.join(sorted(allowed))}; {hint}."
                )
            missing = REQUIRED_VARIABLES.get(template_name, frozenset()) - used
            if missing:
                raise TaskError(
                    f"Task {self.name!r}, prompt {template_name}: missing placeholder(s) "
                    f"{', '.join('{' + name + '}' for name in sorted(missing))}; the prompt cannot work without them."
                )

    def _check_judge_schema(self) -> None:
        if not (isinstance(self.judge_schema, type) and issubclass(self.judge_schema, BaseModel)):
            raise TaskError(f"Task {self.name!r}: judge_schema must be a pydantic model class.")
        first = next(iter(self.judge_schema.model_fields), None)
        if first != "reasons":
            raise TaskError(
                f"Task {self.name!r}: the judge schema's first field must be `reasons` (got {first!r}), "
                "so that the model reasons before it decides."
            )

    def _check_callables(self) -> None:
        required = {"decide": self.decide, "check_user": self.check_user}
        optional = {"accept_conversation": self.accept_conversation, "graph_builder": self.graph_builder}
        for what, value in {**required, **optional}.items():
            if (value is not None or what in required) and not callable(value):
                raise TaskError(f"Task {self.name!r}: {what} must be a function, got {type(value).__name__}.")
        for what, provide in self.variables.items():
            if not callable(provide):
                raise TaskError(f"Task {self.name!r}: variable {what!r} must be a function of the prompt context.")

    @property
    def first_persona(self) -> str:
        """The persona used when none is named: `default_persona`, else the first of `default_personas`."""
        if self.default_persona:
            return self.default_persona
        if not self.default_personas:
            raise TaskError(
                f"Task {self.name!r} declares no default persona: name one (`persona=` or `--persona`), "
                "or give the task `default_personas`."
            )
        return self.default_personas[0]


@dataclass(frozen=True)
class PromptContext:
    """What a prompt can be built from at one point of a conversation; a task's `variables` read it."""

    task: Task
    document: Document
    persona: Persona
    link_name: str
    link: Link
    history: list[Turn]
    turn_number: int
    passages: list[Passage] = field(default_factory=list)
    question: str = ""
    answer: str = ""
    document_view: str = ""


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
