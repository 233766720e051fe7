"""`codi report`: one self-contained HTML page about a run (and the same numbers as JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codi_agents.cli._common import command_redactor
from codi_agents.errors import UserError
from codi_agents.report import build_report, write_report


def report_command(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="The --out directory of a `codi run`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="Human-written conversations (Doc2Dial-style JSONL) to compare with."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the numbers as JSON here.")] = None,
    price: Annotated[
        list[str] | None,
        typer.Option("--price", help="ROLE=IN,OUT: dollars per 1k input and output tokens (repeatable)."),
    ] = None,
) -> None:
    """Measure a run and write a report page people would rather look at than read."""
    console = Console()
    with console.status(f"measuring {run_dir}..."):
        report = build_report(run_dir, reference, prices=parse_prices(price) if price else None)
    for warning in report.overview.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    written = write_report(report, out, json_path=json_out, secrets=command_redactor(ctx).secrets)
    o = report.overview
    rate = f"{o.acceptance_rate:.1%}" if o.acceptance_rate is not None else "–"
    console.print(
        f"{o.accepted:,} accepted, {o.rejected:,} rejected ({rate} accepted)"
        + (f", {o.planned:,} planned" if o.planned is not None else ""),
        highlight=False,
    )
    for path in written:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)


def parse_prices(values: list[str]) -> dict[str, tuple[float, float]]:
    """`ROLE=IN,OUT` (or `ROLE=PRICE` for both) to role -> (input, output) dollars per 1k tokens."""
    prices: dict[str, tuple[float, float]] = {}
    for value in values:
        role, _, amounts = value.partition("=")
        parts = [part.strip() for part in amounts.split(",") if part.strip()]
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            numbers = []
        if not role.strip() or len(numbers) not in (1, 2) or any(number < 0 for number in numbers):
            raise UserError(
                f"--price {value!r}: expected ROLE=IN,OUT in dollars per 1k tokens, e.g. assistant=0.15,0.6."
            )
        prices[role.strip()] = (numbers[0], numbers[-1])
    return prices
