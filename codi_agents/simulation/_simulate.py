"""`simulate` and `asimulate`: one document-grounded conversation from a document and a persona."""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents._record import Conversation
from codi_agents.config._resolve import resolve_settings
from codi_agents.config._settings import Settings
from codi_agents.inputs._documents import Document, load_document
from codi_agents.inputs._flows import FlowGraph, load_flow
from codi_agents.inputs._personas import Persona, load_persona
from codi_agents.llm._models import ModelsArgument
from codi_agents.simulation._session import Session
from codi_agents.tasks import get_task
from codi_agents.tasks._base import Task


async def asimulate(
    doc: Document | str | Path,
    persona: Persona | str | Path | None = None,
    *,
    flow: FlowGraph | str | Path | None = None,
    seed: int | None = None,
    task: Task | str | None = None,
    models: ModelsArgument = None,
    embedding_function: EmbeddingFunction[Documents] | None = None,
    settings: Settings | None = None,
    config_file: str | Path | None = None,
    **overrides: Any,
) -> Conversation:
    """Simulate one conversation about `doc` with a user playing `persona`.

    `doc` is a `Document`, a path (.txt, .md, .html, .pdf) or raw text; `persona` a `Persona`, a
    name or a `.toml` path (default: the task's first persona); `flow` a `FlowGraph`, a name or a
    path (default: the task's). Models come from `models` (one chat model, or one per role), else
    from the settings, else the embedded local model. The settings are `settings` as given, or
    resolved from `overrides` (`Settings` fields), `config_file` (a config file: its run keys are
    ignored), `./codi.toml` and the environment (see `codi_agents.config.resolve_settings`).
    Returns the `Conversation` record; a rejected conversation is a record with `accepted=False`,
    not an exception.
    """
    task_name = task.name if isinstance(task, Task) else task
    if settings is None:
        settings = resolve_settings(flags={"seed": seed, "task": task_name, **overrides}, config=config_file)
    elif seed is not None or overrides:
        settings = resolve_settings(flags={"seed": seed, **overrides}, base=settings)
    inputs = load_inputs(settings, doc, persona, flow=flow, task=task)
    async with Session(settings, models=models, embedding_function=embedding_function, task=inputs.task) as session:
        return await session.simulate(inputs.document, inputs.persona, inputs.flow, seed=settings.seed)


@dataclass(frozen=True)
class SimulationInputs:
    """What one conversation is about: the task, the document, the persona and the flow, loaded and checked."""

    task: Task
    document: Document
    persona: Persona
    flow: FlowGraph


def load_inputs(
    settings: Settings,
    doc: Document | str | Path,
    persona: Persona | str | Path | None = None,
    *,
    flow: FlowGraph | str | Path | None = None,
    task: Task | str | None = None,
) -> SimulationInputs:
    """The inputs of `asimulate` (and `codi simulate`), with the task's defaults where one is not given."""
    resolved_task = task if isinstance(task, Task) else get_task(task or settings.task)
    document = load_document(doc, max_bytes=settings.max_document_bytes, oversize=settings.oversize)
    resolved_persona = load_persona(persona or resolved_task.first_persona, search_dirs=resolved_task.persona_dirs)
    resolved_flow = load_flow(flow or settings.flow or resolved_task.default_flow, search_dirs=resolved_task.flow_dirs)
    return SimulationInputs(resolved_task, document, resolved_persona, resolved_flow)


def simulate(
    doc: Document | str | Path,
    persona: Persona | str | Path | None = None,
    **kwargs: Any,
) -> Conversation:
    """Synchronous `asimulate`; safe to call from code that already runs an event loop (e.g. Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(asimulate(doc, persona, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asimulate(doc, persona, **kwargs)).result()
