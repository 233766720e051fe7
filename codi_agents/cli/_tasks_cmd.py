"""`codi tasks`: the conversational tasks installed, with their default flows and personas, and broken plug-ins."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from codi_agents.errors import TaskError
from codi_agents.inputs._flows import available_flows
from codi_agents.inputs._personas import available_personas
from codi_agents.tasks import list_tasks


def tasks_command() -> None:
    """List the installed conversational tasks; a plug-in that fails to load is shown and makes the exit code 2."""
    errors: dict[str, TaskError] = {}
    table = Table(title="conversational tasks")
    table.add_column("task", style="bold", overflow="fold")
    table.add_column("description")
    table.add_column("default flow")
    table.add_column("personas", overflow="fold")
    for name, task in list_tasks(errors).items():
        flow = task.default_flow
        if flow not in available_flows(task.flow_dirs):
            flow = f"[red]{flow} (not found)[/]"
        personas = available_personas(task.persona_dirs)
        if task.default_personas:
            missing = [persona for persona in task.default_personas if persona not in personas]
            shown = ", ".join(task.default_personas)
            persona_text = f"{shown} [red](not found: {', '.join(missing)})[/]" if missing else shown
        else:
            persona_text = f"any of {len(personas)}"
        table.add_row(name, task.description, flow, persona_text)
    for name in sorted(errors):
        table.add_row(f"[red]{name}[/]", f"[red]fails to load[/]: {errors[name]}", "", "")
    Console().print(table)
    if errors:
        raise TaskError(f"{len(errors)} task plug-in(s) failed to load: {', '.join(sorted(errors))} (see above).")
