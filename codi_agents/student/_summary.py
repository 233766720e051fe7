"""Aggregate scored turns: overall, by turn position (first exchange vs later, history-dependent ones)
and by domain, with SacreBLEU per group; as rows for the table, a JSON document and a plotly figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codi_agents.student._eval import EvalOutcome, TurnResult
from codi_agents.student._scoring import corpus_bleu

METRICS = ("f1", "em", "recall", "bleu")


class GroupScore(BaseModel):
    """The metrics of one group of turns (means in [0, 1]; BLEU on SacreBLEU's 0-100 scale)."""

    group: str
    turns: int
    f1: float | None
    em: float | None
    recall: float | None
    bleu: float | None
    abstained: float | None
    unanswerable: int
    empty: int
    looping: int


def group_score(name: str, results: Sequence[TurnResult]) -> GroupScore:
    """Means over `results`; BLEU over the answerable ones."""
    count = len(results)

    def mean(value: Callable[[TurnResult], float]) -> float | None:
        return sum(value(result) for result in results) / count if count else None

    answerable = [result for result in results if not result.unanswerable]
    return GroupScore(
        group=name,
        turns=count,
        f1=mean(lambda r: r.f1),
        em=mean(lambda r: r.em),
        recall=mean(lambda r: r.recall),
        bleu=corpus_bleu([r.reply for r in answerable], [r.references[0] for r in answerable]),
        abstained=mean(lambda r: float(r.abstained)),
        unanswerable=count - len(answerable),
        empty=sum("empty" in r.flags for r in results),
        looping=sum("looping" in r.flags for r in results),
    )


def summarize(results: Sequence[TurnResult]) -> list[GroupScore]:
    """Rows: `overall`, `first turn`, `later turns`, then `domain: X` for every domain."""
    rows = [group_score("overall", results)]
    for position, label in (("first", "first turn"), ("later", "later turns")):
        rows.append(group_score(label, [r for r in results if r.position == position]))
    for domain in sorted({r.domain for r in results}):
        rows.append(group_score(f"domain: {domain}", [r for r in results if r.domain == domain]))
    return rows


def summary_document(outcome: EvalOutcome, results_file: Path) -> dict[str, Any]:
    """The `--json` document: setup, groups, skips and failures."""
    return {
        "model": outcome.header["model"],
        "prompt": outcome.header["prompt"],
        "conversations": outcome.header["conversations"],
        "codi_version": outcome.header.get("codi_version"),
        "results_file": str(results_file),
        "groups": [row.model_dump() for row in summarize(outcome.results)],
        "skipped": outcome.skipped,
        "failed": outcome.failed,
        "resumed": outcome.resumed,
    }


def summary_figure(rows: Sequence[GroupScore], title: str) -> Any:
    """Grouped bars of F1, recall, EM (x100) and BLEU per group, in the style of `codi report`."""
    import plotly.graph_objects as go

    from codi_agents.report._figures import FONT

    figure = go.Figure()
    colours = {"f1": "#2f6fde", "recall": "#1d7fa5", "em": "#7a8594", "bleu": "#d9822b"}
    for metric in ("f1", "recall", "em", "bleu"):
        scale = 1.0 if metric == "bleu" else 100.0
        values = [None if getattr(row, metric) is None else getattr(row, metric) * scale for row in rows]
        figure.add_bar(
            name=metric.upper() if metric != "recall" else "recall",
            x=[f"{row.group} ({row.turns})" for row in rows],
            y=values,
            marker_color=colours[metric],
        )
    figure.update_layout(
        title=title,
        barmode="group",
        height=380,
        font={"family": FONT, "size": 13, "color": "#27313d"},
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        yaxis={"title": "score (0-100)", "gridcolor": "#edf0f4"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return figure


def write_plot(figures: Sequence[Any], out: Path) -> Path:
    """One self-contained HTML page (plotly.js inlined once), or a PNG when `out` ends in .png (needs kaleido)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        figures[0].write_image(str(out))
        return out
    parts = [figure.to_html(full_html=False, include_plotlyjs=index == 0) for index, figure in enumerate(figures)]
    out.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>codi eval-student</title></head><body>"
        + "\n".join(parts)
        + "</body></html>",
        encoding="utf-8",
    )
    return out
