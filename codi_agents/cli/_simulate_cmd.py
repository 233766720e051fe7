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
    command_redactor,
    endpoint_flags,
)
from codi_agents.config._resolve import resolve_settings
from codi_agents.config._settings import UserMode
from codi_agents.display import models_table, print_conversation
from codi_agents.inputs._documents import Document
from codi_agents.inputs._flows import FlowGraph
from codi_agents.inputs._personas import Persona
from codi_agents.simulation._session import Session
from codi_agents.simulation._simulate import load_inputs


def simulate_command(
    ctx: typer.Context,
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
    redactor = command_redactor(ctx)
    redactor.add(api_key)
    flags = {
        "seed": seed,
        "task": task,
        "flow": flow,
        "user_mode": user_mode,
        "critic_calibration": str(calibration) if calibration else None,
        "endpoint": endpoint_flags(base_url, model, api_key),
    }
    settings = resolve_settings(flags=flags, config=config)
    redactor.add_settings(settings)
    inputs = load_inputs(settings, doc, persona)
    session = Session(settings, task=inputs.task)
    try:
        with console.status("starting models..."):
            session.open()
        console.print(models_table(session.models))
        with console.status(f"simulating a conversation about {inputs.document.title or inputs.document.id}..."):
            conversation = asyncio.run(
                _simulate_and_close(session, inputs.document, inputs.persona, inputs.flow, settings.seed)
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
