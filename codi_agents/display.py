"""Showing a conversation to a person: roles, links, verdicts, in the terminal with rich."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from codi_agents._record import Conversation, Turn


def conversation_panel(conversation: Conversation) -> Panel:
    """The whole conversation as one panel: header, turns with links and verdicts, outcome."""
    header = Text.assemble(
        ("document ", "dim"), (conversation.doc_title or conversation.doc_id, "bold"),
        ("   persona ", "dim"), (conversation.persona.name, "bold"),
        ("   flow ", "dim"), (conversation.flow, "bold"),
        ("   seed ", "dim"), (str(conversation.seed), "bold"),
    )  # fmt: skip
    parts: list[Text | Table] = [header, Text("")]
    for turn in conversation.turns:
        parts.append(_turn_text(turn))
    parts.append(Text(""))
    parts.append(_outcome(conversation))
    parts.append(models_table(conversation.models, conversation))
    return Panel(Group(*parts), title=f"conversation {conversation.id}", border_style="cyan")


def models_table(models: dict[str, str], conversation: Conversation | None = None) -> Table:
    """Which model each role used, with token usage when known."""
    table = Table(show_header=True, header_style="dim", box=None, pad_edge=False)
    table.add_column("role")
    table.add_column("model")
    if conversation is not None:
        table.add_column("requests", justify="right")
        table.add_column("tokens in/out", justify="right")
    for role, name in models.items():
        if conversation is None:
            table.add_row(role, name)
            continue
        usage = conversation.usage.get(role)
        table.add_row(
            role,
            name,
            str(usage.requests) if usage else "0",
            f"{usage.input_tokens}/{usage.output_tokens}" if usage else "0/0",
        )
    return table


def print_conversation(conversation: Conversation, console: Console | None = None) -> None:
    """Print a conversation readably."""
    (console or Console()).print(conversation_panel(conversation))


def _turn_text(turn: Turn) -> Text:
    if turn.role == "user":
        text = Text.assemble(("USER ", "bold magenta"), (f"[{turn.link}] ", "magenta"), turn.content)
        if turn.check is not None and not turn.check.link_realised:
            text.append("  (link not realised)", style="yellow")
        return text
    text = Text.assemble(("ASSISTANT ", "bold green"), turn.content)
    verdict = turn.verdict
    if verdict is not None:
        style = "green" if verdict.accepted else "red"
        mark = "passed" if verdict.accepted else f"rejected: {verdict.rejection}"
        text.append(f"\n    critic {mark}, score {verdict.score:.2f}", style=style)
        if turn.attempts > 1:
            text.append(f", after {turn.attempts} attempts", style=style)
        if turn.passage_ids:
            text.append(f"; passages {', '.join(pid.rsplit('::', 1)[-1] for pid in turn.passage_ids)}", style="dim")
    return text


def _outcome(conversation: Conversation) -> Text:
    if conversation.accepted:
        return Text(f"ACCEPTED: {conversation.exchanges} exchanges", style="bold green")
    return Text(f"REJECTED ({conversation.rejection}): {conversation.rejection_reason}", style="bold red")
