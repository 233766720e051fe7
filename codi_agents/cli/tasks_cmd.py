"""`codi tasks`: the conversational tasks installed, with their default flows and personas."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from codi_agents.personas import available_personas
from codi_agents.tasks import list_tasks


def tasks_command() -> None:
    """List the installed conversational tasks."""
    table = Table(title="conversational tasks")
    table.add_column("task", style="bold")
    table.add_column("description")
    table.add_column("default flow")
    table.add_column("personas", justify="right")
    for name, task in list_tasks().items():
        table.add_row(name, task.description, task.default_flow, str(len(available_personas(task.persona_dirs))))
    Console().print(table)
