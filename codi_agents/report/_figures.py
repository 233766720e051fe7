"""Plotly figures of a run report, built from the numbers alone (bins and quantiles, never raw records),
so that the page stays small however large the run."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from codi_agents.report._schema import Distribution, GroupRow, RunReport

ACCEPTED = "#2a9d8f"
REJECTED = "#e76f51"
REFERENCE = "#6c5ce7"
PLANNED = "#b8c0cc"
ASKED = "#8ecae6"
REALISED = "#1d7fa5"
FONT = "Inter, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"


def template() -> go.layout.Template:
    """A light template; plotly's built-in ones add 10 kB of JSON to every figure."""
    axis = {"gridcolor": "#edf0f4", "zerolinecolor": "#dde2e8", "linecolor": "#c9d0d8", "ticks": "", "automargin": True}
    return go.layout.Template(
        layout={
            "font": {"family": FONT, "size": 13, "color": "#27313d"},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "#ffffff",
            "colorway": [ACCEPTED, REJECTED, REFERENCE, REALISED, PLANNED],
            "xaxis": axis,
            "yaxis": axis,
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
            "hoverlabel": {"font": {"family": FONT}},
            "bargap": 0.15,
        }
    )


def new_figure(height: int = 340, **layout: object) -> go.Figure:
    """An empty figure in the report's template."""
    figure = go.Figure()
    figure.update_layout(template=template(), height=height, **layout)
    return figure


def rejection_figure(report: RunReport) -> go.Figure | None:
    """Conversation rejections by category."""
    rows = report.overview.rejections
    if not rows:
        return None
    figure = new_figure(height=max(180, 60 + 34 * len(rows)))
    figure.add_bar(
        y=[row.category for row in rows][::-1],
        x=[row.count for row in rows][::-1],
        orientation="h",
        marker_color=REJECTED,
        text=[f"{row.count} ({row.share:.0%})" for row in rows][::-1],
        textposition="auto",
        name="rejected conversations",
        hovertemplate="%{y}: %{x}<extra></extra>",
    )
    figure.update_layout(xaxis_title="rejected conversations", showlegend=False, margin_t=10)
    _integer_axis(figure, max(row.count for row in rows), "x")
    return figure


def turns_figure(report: RunReport) -> go.Figure:
    """Exchanges per conversation, as a share of each set."""
    figure = new_figure(
        xaxis_title="exchanges (user turn + reply) per conversation", yaxis_title="share of conversations"
    )
    series = [
        ("accepted", report.structure.exchanges_accepted, ACCEPTED),
        ("rejected", report.structure.exchanges_rejected, REJECTED),
    ]
    if report.reference is not None:
        series.append((report.reference.name, report.reference.user_turns_per_conversation, REFERENCE))
    for name, counts, color in series:
        total = sum(counts.values())
        if not total:
            continue
        keys = sorted(counts)
        figure.add_bar(
            x=keys,
            y=[counts[key] / total for key in keys],
            name=f"{name} (n={total})",
            marker_color=color,
            customdata=[counts[key] for key in keys],
            hovertemplate="%{x} exchanges: %{y:.0%} (%{customdata})<extra>" + name + "</extra>",
        )
    figure.update_layout(barmode="group", yaxis_tickformat=".0%", xaxis_dtick=1)
    return figure


def links_figure(report: RunReport) -> go.Figure | None:
    """Per link: planned by the flow, asked by the user simulator, realised according to the critic."""
    rows = report.structure.links
    if not rows:
        return None
    names = [row.link for row in rows][::-1]
    figure = new_figure(height=max(260, 80 + 46 * len(rows)), xaxis_title="user turns")
    for label, values, color in (
        ("planned", [row.planned for row in rows], PLANNED),
        ("asked", [row.asked for row in rows], ASKED),
        ("realised", [row.realised for row in rows], REALISED),
    ):
        figure.add_bar(y=names, x=values[::-1], name=label, orientation="h", marker_color=color)
    figure.add_scatter(
        y=names,
        x=[max(row.planned, row.asked) for row in rows][::-1],
        mode="text",
        text=[f"  {row.realisation_rate:.0%}" if row.realisation_rate is not None else "" for row in rows][::-1],
        textposition="middle right",
        showlegend=False,
        hoverinfo="skip",
    )
    figure.update_layout(barmode="group", bargap=0.25)
    _integer_axis(figure, max(max(row.planned, row.asked) for row in rows), "x")
    return figure


def _integer_axis(figure: go.Figure, largest: int, axis: str) -> None:
    """Whole-number ticks on a count axis with small values (plotly would show 0.5 steps)."""
    if largest <= 10:
        figure.update_layout({f"{axis}axis": {"dtick": 1, "tick0": 0}})


def acceptance_figure(personas: Sequence[GroupRow], flows: Sequence[GroupRow]) -> go.Figure:
    """Accepted and rejected conversations per persona and per flow; the acceptance rate is in the label."""
    rows = max(len(personas), len(flows), 1)
    figure = make_subplots(rows=1, cols=2, subplot_titles=("per persona", "per flow"), horizontal_spacing=0.2)
    for column, groups in ((1, personas), (2, flows)):
        names = [
            f"{group.name} · {group.acceptance_rate:.0%}" if group.acceptance_rate is not None else group.name
            for group in groups
        ][::-1]
        for label, values, color in (
            ("accepted", [group.accepted for group in groups][::-1], ACCEPTED),
            ("rejected", [group.conversations - group.accepted for group in groups][::-1], REJECTED),
        ):
            figure.add_bar(
                y=names, x=values, orientation="h", name=label, marker_color=color, row=1, col=column,
                legendgroup=label, showlegend=column == 1, hovertemplate="%{y}: %{x} " + label + "<extra></extra>",
            )  # fmt: skip
    figure.update_layout(
        template=template(), barmode="stack", height=max(240, 110 + 34 * rows), margin_t=70, legend_y=1.12
    )
    figure.update_xaxes(title_text="conversations")
    return figure


def score_figure(report: RunReport) -> go.Figure:
    """The critic's combined score per assistant reply, accepted against rejected."""
    figure = new_figure(xaxis_title="critic score", yaxis_title="assistant replies")
    for name, histogram, color in (
        ("accepted", report.critic.score_histogram_accepted, ACCEPTED),
        ("rejected", report.critic.score_histogram_rejected, REJECTED),
    ):
        if histogram is None or not sum(histogram.counts):
            continue
        centres = [(low + high) / 2 for low, high in zip(histogram.edges, histogram.edges[1:], strict=False)]
        figure.add_bar(
            x=centres,
            y=histogram.counts,
            width=histogram.edges[1] - histogram.edges[0],
            name=f"{name} (n={sum(histogram.counts)})",
            marker_color=color,
            opacity=0.75,
            hovertemplate="score %{x:.2f}: %{y}<extra>" + name + "</extra>",
        )
    figure.update_layout(barmode="overlay", xaxis_range=[0, 1])
    return figure


def signals_figure(report: RunReport) -> go.Figure | None:
    """Every grounding signal, accepted against rejected replies: box = quartiles, whiskers = 10th-90th percentile."""
    signals = [row for row in report.critic.signals if row.accepted.count or row.rejected.count]
    if not signals:
        return None
    columns = 4
    rows = math.ceil(len(signals) / columns)
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[row.name for row in signals],
        vertical_spacing=0.5 / rows if rows > 1 else 0.1,
        horizontal_spacing=0.06,
    )
    for index, signal in enumerate(signals):
        row, column = index // columns + 1, index % columns + 1
        for name, summary, color in (("accepted", signal.accepted, ACCEPTED), ("rejected", signal.rejected, REJECTED)):
            if not summary.count:
                continue
            figure.add_trace(_box(name, summary, color, showlegend=index == 0), row=row, col=column)
    figure.update_layout(template=template(), height=170 * rows + 70, margin_t=70, legend_y=1.0 + 0.35 / rows)
    figure.update_xaxes(showticklabels=False)
    figure.update_annotations(font_size=12)
    return figure


def _box(name: str, summary: Distribution, color: str, showlegend: bool) -> go.Box:
    return go.Box(
        name=name,
        x=[name],
        q1=[summary.p25],
        median=[summary.median],
        q3=[summary.p75],
        lowerfence=[summary.p10],
        upperfence=[summary.p90],
        mean=[summary.mean],
        marker_color=color,
        legendgroup=name,
        showlegend=showlegend,
        boxpoints=False,
        hovertemplate=f"{name}<br>n={summary.count}<extra></extra>",
    )
