"""Plotly figures of the language section: turn lengths, question types, diversity, synthetic against human."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from codi_agents.report._figures import ACCEPTED, REFERENCE, new_figure, template
from codi_agents.report._metrics import QUESTION_TYPES
from codi_agents.report._schema import LanguageStats

USER_WORD_BIN = 2
ASSISTANT_WORD_BIN = 5
MAX_WORDS = 60


def lengths_figure(language: LanguageStats, reference: LanguageStats | None) -> go.Figure:
    """Words per user turn and per assistant turn, as a share of turns, in bins of a few words."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("user turns", "assistant turns"), horizontal_spacing=0.08)
    sets = [(language, ACCEPTED)] + ([(reference, REFERENCE)] if reference is not None else [])
    for stats, color in sets:
        for column, counts, width in (
            (1, stats.user_words, USER_WORD_BIN),
            (2, stats.assistant_words, ASSISTANT_WORD_BIN),
        ):
            x, y = _word_bins(counts, width)
            figure.add_bar(
                x=x, y=y, name=stats.name, marker_color=color, opacity=0.8, row=1, col=column,
                legendgroup=stats.name, showlegend=column == 1,
                hovertemplate="%{x} words: %{y:.1%}<extra>" + stats.name + "</extra>",
            )  # fmt: skip
    figure.update_layout(template=template(), barmode="group", height=360, margin_t=70, legend_y=1.12)
    figure.update_yaxes(tickformat=".0%")
    figure.update_xaxes(title_text=f"words (bin start; {MAX_WORDS}+ in the last bin)")
    return figure


def _word_bins(counts: dict[int, int], width: int) -> tuple[list[int], list[float]]:
    total = sum(counts.values())
    bins: dict[int, int] = {}
    for words, times in counts.items():
        start = min(words, MAX_WORDS) // width * width
        bins[start] = bins.get(start, 0) + times
    keys = sorted(bins)
    return keys, [bins[key] / total if total else 0.0 for key in keys]


def question_types_figure(language: LanguageStats, reference: LanguageStats | None) -> go.Figure:
    """The question-type mix of user turns, as a share of user turns."""
    sets = [(language, ACCEPTED)] + ([(reference, REFERENCE)] if reference is not None else [])
    kinds = [kind for kind in _ordered_kinds(sets) if any(stats.question_types.get(kind) for stats, _ in sets)]
    figure = new_figure(yaxis_title="share of user turns")
    for stats, color in sets:
        total = sum(stats.question_types.values()) or 1
        figure.add_bar(
            x=kinds,
            y=[stats.question_types.get(kind, 0) / total for kind in kinds],
            name=stats.name,
            marker_color=color,
            hovertemplate="%{x}: %{y:.1%}<extra>" + stats.name + "</extra>",
        )
    figure.update_layout(barmode="group", yaxis_tickformat=".0%")
    return figure


def _ordered_kinds(sets: Sequence[tuple[LanguageStats, str]]) -> list[str]:
    kinds: list[str] = list(QUESTION_TYPES)
    for stats, _ in sets:
        kinds.extend(kind for kind in stats.question_types if kind not in kinds)
    return kinds


def diversity_figure(language: LanguageStats, reference: LanguageStats | None) -> go.Figure:
    """Diversity and context-dependence measures side by side (all are shares between 0 and 1)."""
    labels: dict[str, Callable[[LanguageStats], float | None]] = {
        "distinct-1 (user)": lambda s: s.distinct.get("user-1"),
        "distinct-2 (user)": lambda s: s.distinct.get("user-2"),
        "distinct-1 (assistant)": lambda s: s.distinct.get("assistant-1"),
        "distinct-2 (assistant)": lambda s: s.distinct.get("assistant-2"),
        "depends on earlier turns": lambda s: s.dependent_share,
        "repeats own question": lambda s: s.repeated_question_share,
        "near-duplicate conversations": lambda s: s.near_duplicate_share,
    }
    figure = new_figure(height=320, yaxis_range=[0, 1.05], yaxis_tickformat=".0%")
    for stats, color in [(language, ACCEPTED)] + ([(reference, REFERENCE)] if reference is not None else []):
        values = [getter(stats) for getter in labels.values()]
        figure.add_bar(
            x=list(labels),
            y=values,
            name=stats.name,
            marker_color=color,
            text=[f"{value:.2f}" if value is not None else "–" for value in values],
            textposition="outside",
            hovertemplate="%{x}: %{y:.3f}<extra>" + stats.name + "</extra>",
        )
    figure.update_layout(barmode="group")
    return figure
