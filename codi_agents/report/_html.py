"""The report page: one self-contained HTML file (plotly.js inlined once), readable offline.

Every text that comes from a run (document ids, replies, reasons) is escaped: documents are
untrusted, and a report must not run what a document smuggled in.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from plotly.offline import get_plotlyjs

from codi_agents.report import _figures as figures
from codi_agents.report._html_blocks import (
    card,
    duration,
    html_table,
    integer,
    meter,
    money,
    percent,
    plot,
    rejection_table,
    section,
    summary_item,
)
from codi_agents.report._html_sections import critic_section, injection_section, language_section, structure_section
from codi_agents.report._schema import RunReport

_STYLE = Path(__file__).with_name("report.css")


def render_html(report: RunReport) -> str:
    """The whole page as a string."""
    overview = report.overview
    title = f"codi report · {Path(overview.run_dir).name or overview.run_dir}"
    body = "\n".join(
        [
            _header(report),
            _nav(report),
            _cards(report),
            _glance(report),
            structure_section(report),
            critic_section(report),
            language_section(report),
            injection_section(report),
            _definitions(report),
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{escape(title)}</title>\n<style>{_STYLE.read_text(encoding='utf-8')}</style>\n"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------- sections


def _header(report: RunReport) -> str:
    o = report.overview
    models = "".join(
        f"<span class='chip'><b>{escape(row.role)}</b> {escape(', '.join(row.models) or '?')}</span>" for row in o.usage
    )
    meta = [
        ("run", o.run_dir),
        ("task", ", ".join(o.tasks)),
        ("codi", o.codi_version),
        ("fingerprint", o.fingerprint),
        ("generated", o.generated_at),
    ]
    chips = "".join(f"<span class='chip'><b>{escape(k)}</b> {escape(v)}</span>" for k, v in meta if v)
    warnings = "".join(f"<p class='warning'>⚠ {escape(text)}</p>" for text in o.warnings)
    return (
        "<header><div class='brand'>codi</div><h1>Run report</h1>"
        f"<div class='chips'>{chips}</div><div class='chips'>{models}</div>{warnings}</header>"
    )


def _nav(report: RunReport) -> str:
    links = [("glance", "At a glance"), ("structure", "Structure"), ("critic", "Critic"), ("language", "Language")]
    links.append(("injection", "Injection"))
    links.append(("definitions", "How it is measured"))
    return "<nav>" + "".join(f"<a href='#{key}'>{escape(label)}</a>" for key, label in links) + "</nav>"


def _cards(report: RunReport) -> str:
    o, s, i = report.overview, report.structure, report.injection
    tokens = "".join(
        f"<div>{escape(row.role)}: {integer(row.input_tokens + row.output_tokens)}</div>" for row in o.usage
    )
    cost_detail = (
        "".join(f"<div>{escape(r.role)}: {money(r.cost)}</div>" for r in o.usage if r.cost is not None)
        if o.total_cost is not None
        else "<div>no prices in the run config; pass --price ROLE=IN,OUT</div>"
    )
    planned = f"of {integer(o.planned)} planned" if o.planned is not None else "planned count not in the manifest"
    cards = [
        card("Accepted", integer(o.accepted), f"{integer(o.conversations)} finished · {planned}", "good", "accepted"),
        card("Rejected", integer(o.rejected), "by the critic or failed", "bad", "rejected"),
        card("Acceptance rate", percent(o.acceptance_rate), meter(o.acceptance_rate), "", "acceptance-rate"),
        card(
            "Wall time",
            duration(o.wall_time_seconds),
            f"from {escape(o.wall_time_source)} · median {duration(o.conversation_seconds.median)} per conversation"
            if o.wall_time_seconds is not None
            else "",
            "",
            "wall-time",
        ),
        card("Tokens", integer(o.total_tokens), tokens, "", "tokens"),
        card("Estimated cost", money(o.total_cost), cost_detail, "", "cost"),
        card(
            "Preference pairs", integer(s.preference_pairs), f"{integer(s.regenerated_turns)} fixed turns", "", "pairs"
        ),
        card(
            "Injection",
            f"{integer(i.flagged_passages)} / {integer(i.follows_injection_turns)}",
            "flagged passages / replies rejected for following them",
            "bad" if i.follows_injection_turns else "",
            "injection",
        ),
    ]
    return "<section class='cards'>" + "".join(cards) + "</section>"


def _glance(report: RunReport) -> str:
    o = report.overview
    usage_rows = [
        [
            escape(row.role),
            escape(", ".join(row.models)),
            integer(row.requests),
            integer(row.input_tokens),
            integer(row.output_tokens),
            money(row.cost),
        ]
        for row in o.usage
    ]
    usage = html_table(["role", "model", "requests", "input tokens", "output tokens", "est. cost"], usage_rows, "usage")
    extras = []
    if o.flags:
        extras.append("Flags: " + ", ".join(f"{escape(k)} {integer(v)}" for k, v in o.flags.items()))
    if o.failures:
        extras.append(
            "Failures kept in records: " + ", ".join(f"{escape(k)} {integer(v)}" for k, v in o.failures.items())
        )
    if o.run_summary:
        extras.append("From summary.json: " + "; ".join(summary_item(k, v) for k, v in o.run_summary.items()))
    extra = "".join(f"<p class='note'>{text}</p>" for text in extras)
    rejections = (
        plot(figures.rejection_figure(report)) + rejection_table(o.rejections, "conversations", "rejections")
        if o.rejections
        else "<p class='note'>No conversation was rejected.</p>"
    )
    return section(
        "glance",
        "At a glance",
        "What the run produced and what it cost. Rejected conversations are kept in rejected.jsonl with the reason.",
        f"<h3>Tokens and cost per role</h3>{usage}{extra}<h3>Why conversations were rejected</h3>{rejections}",
    )


def _definitions(report: RunReport) -> str:
    items = [
        ("Acceptance rate", "accepted / finished conversations."),
        ("Exchanges", "a user turn and the assistant's reply."),
        ("Realised link", "the critic's check of a user turn found it to be the kind of turn the flow planned."),
        ("Critic score", "the combined score of the cheap grounding signals and the LLM judge, 0 to 1."),
        ("Question type", "from the first word of the question clause: wh-word, auxiliary (yes/no), request verb."),
        ("distinct-n", "distinct n-grams / all n-grams over the turns (Li et al., 2016); higher is more varied."),
        (
            "Depends on earlier turns",
            "a user turn after the first with a pronoun or demonstrative (it, they, this, ...), an elliptical "
            "opener (and ..., what about ...), a question of four words or fewer, or an explicit reference "
            "to what was said.",
        ),
        ("Near-duplicate conversations", "user sides with an estimated word-3-gram Jaccard similarity ≥ 0.8."),
        ("Preference pairs", "critic-rejected attempts paired with the accepted regeneration of the same turn."),
    ]
    rows = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in items)
    return section("definitions", "How it is measured", "", f"<dl>{rows}</dl>")
