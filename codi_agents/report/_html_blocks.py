"""Building blocks of the report page: sections, cards, tables, plots, and how numbers are written.

Every text handed to a table cell or a card detail is already escaped HTML; the blocks add only markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

import plotly.graph_objects as go
import plotly.io as pio

from codi_agents.report._schema import Distribution, RejectionRow

PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
_NUMERIC = re.compile(r"^[-–$\d.,% ]+$")


def section(key: str, title: str, intro: str, content: str) -> str:
    lead = f"<p class='lead'>{escape(intro)}</p>" if intro else ""
    return f"<section id='{key}' class='panel'><h2>{escape(title)}</h2>{lead}{content}</section>"


def card(label: str, value: str, detail: str, tone: str, key: str) -> str:
    data = f" data-metric='{key}'" if key else ""
    return (
        f"<div class='card {tone}'{data}><div class='label'>{escape(label)}</div>"
        f"<div class='value'>{value}</div><div class='detail'>{detail}</div></div>"
    )


def meter(rate: float | None) -> str:
    width = 0 if rate is None else round(rate * 100)
    return f"<div class='meter'><span style='width:{width}%'></span></div>"


def plot(figure: go.Figure | None) -> str:
    if figure is None:
        return "<p class='note'>Nothing to plot.</p>"
    html = pio.to_html(figure, full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)
    return f"<div class='plot'>{html}</div>"


def html_table(header: Sequence[str], rows: Iterable[Sequence[str]], key: str) -> str:
    rows = [list(row) for row in rows]
    numeric = [
        index > 0 and bool(rows) and all(_NUMERIC.match(row[index]) for row in rows) for index in range(len(header))
    ]
    head = "".join(f"<th{_num_class(numeric[i])}>{cell}</th>" for i, cell in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{_num_class(numeric[i])}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return (
        f"<div class='table-wrap'><table id='{key}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _num_class(numeric: bool) -> str:
    return " class='num'" if numeric else ""


def details(summary: str, content: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{content}</details>"


def rejection_table(rows: Sequence[RejectionRow], unit: str, key: str) -> str:
    body = [
        [
            f"<span class='tag'>{escape(row.category)}</span>",
            integer(row.count),
            percent(row.share),
            escape(row.example_reason),
            f"<span class='quote'>{escape(row.example_reply)}</span>",
            f"<code>{escape(row.example_conversation)}</code><br><small>{escape(row.example_doc)}</small>",
        ]
        for row in rows
    ]
    return html_table(["reason", unit, "share", "example: why", "example: reply", "conversation"], body, key)


def summary_item(key: str, value: object) -> str:
    label = {"errors": "lost to server errors (retried on resume)", "stopped_because": "stopped because"}.get(key, key)
    if isinstance(value, dict):
        value = ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, dict | list))
    return f"{escape(label.replace('_', ' '))}: {escape(str(value))}"


def summary_cells(summary: Distribution) -> list[str]:
    return [number(summary.mean), number(summary.median), number(summary.p10), number(summary.p90)]


# ---------------------------------------------------------------- formatting


def integer(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:,.{digits}f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
