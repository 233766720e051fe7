"""`codi simulate`: one conversation, printed readably and written as JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codi_agents._record import Conversation
from codi_agents.cli._common import (
    ApiKeyOption,
    BaseUrlOption,
    CalibrationOption,
    ConfigOption,
    ModelOption,
    settings_from_options,
)
from codi_agents.config._settings import UserMode
from codi_agents.display import models_table, print_conversation
from codi_agents.inputs._documents import Document, load_document
from codi_agents.inputs._flows import FlowGraph, load_flow
from codi_agents.inputs._personas import Persona, load_persona
from codi_agents.simulation._session import Session
from codi_agents.tasks import get_task


def simulate_command(
    doc: Annotated[
        Path, typer.Option("--doc", help="Document to ground the conversation in (.txt, .md, .html, .pdf).")
    ],
    persona: Annotated[
        str | None, typer.Option("--persona", help="Persona name or .toml path; default: the task's first persona.")
    ] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="Flow graph name or .toml path.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for the flow path.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the conversation record as JSON here.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Conversational task (see `codi tasks`).")] = None,
    user_mode: Annotated[
        UserMode | None,
        typer.Option("--user-mode", help="reader: the user sees the document; seeker: only its opening."),
    ] = None,
    calibration: CalibrationOption = None,
    config: ConfigOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Simulate one document-grounded conversation and show it with the critic's verdicts."""
    console = Console()
    settings = settings_from_options(
        config,
        base_url,
        model,
        api_key,
        seed=seed,
        task=task,
        flow=flow,
        user_mode=user_mode,
        critic_calibration=str(calibration) if calibration else None,
    )
    resolved_task = get_task(settings.task)
    document = load_document(doc, max_bytes=settings.max_document_bytes, oversize=settings.oversize)
    resolved_persona = load_persona(persona or resolved_task.first_persona, search_dirs=resolved_task.persona_dirs)
    resolved_flow = load_flow(settings.flow or resolved_task.default_flow, search_dirs=resolved_task.flow_dirs)
    session = Session(settings, task=resolved_task)
    try:
        with console.status("starting models..."):
            session.open()
        console.print(models_table(session.models))
        with console.status(f"simulating a conversation about {document.title or document.id}..."):
            conversation = asyncio.run(
                _simulate_and_close(session, document, resolved_persona, resolved_flow, settings.seed)
            )
    finally:
        session.close()
    print_conversation(conversation, console)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(conversation.model_dump_json(indent=2), encoding="utf-8")
        console.print(f"wrote {out}")


async def _simulate_and_close(
    session: Session, document: Document, persona: Persona, flow: FlowGraph, seed: int
) -> Conversation:
    """One conversation, then the models' HTTP connections closed on the loop that opened them."""
    try:
        return await session.simulate(document, persona, flow, seed=seed)
    finally:
        await session.close_connections()
