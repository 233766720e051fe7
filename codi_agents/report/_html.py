"""The report page: one self-contained HTML file (plotly.js inlined once), readable offline.

Every text that comes from a run (document ids, replies, reasons) is escaped: documents are
untrusted, and a report must not run what a document smuggled in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from codi_agents.report import _figures as figures
from codi_agents.report._schema import Distribution, RejectionRow, RunReport

PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
_STYLE = Path(__file__).with_name("report.css")
_NUMERIC = re.compile(r"^[-–$\d.,% ]+$")


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
            _structure(report),
            _critic(report),
            _language(report),
            _injection(report),
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
    tokens = "".join(f"<div>{escape(row.role)}: {_int(row.input_tokens + row.output_tokens)}</div>" for row in o.usage)
    cost_detail = (
        "".join(f"<div>{escape(r.role)}: {_money(r.cost)}</div>" for r in o.usage if r.cost is not None)
        if o.total_cost is not None
        else "<div>no prices in the run config; pass --price ROLE=IN,OUT</div>"
    )
    planned = f"of {_int(o.planned)} planned" if o.planned is not None else "planned count not in the manifest"
    cards = [
        _card("Accepted", _int(o.accepted), f"{_int(o.conversations)} finished · {planned}", "good", "accepted"),
        _card("Rejected", _int(o.rejected), "by the critic or failed", "bad", "rejected"),
        _card("Acceptance rate", _pct(o.acceptance_rate), _meter(o.acceptance_rate), "", "acceptance-rate"),
        _card(
            "Wall time",
            _duration(o.wall_time_seconds),
            f"from {escape(o.wall_time_source)} · median {_duration(o.conversation_seconds.median)} per conversation"
            if o.wall_time_seconds is not None
            else "",
            "",
            "wall-time",
        ),
        _card("Tokens", _int(o.total_tokens), tokens, "", "tokens"),
        _card("Estimated cost", _money(o.total_cost), cost_detail, "", "cost"),
        _card("Preference pairs", _int(s.preference_pairs), f"{_int(s.regenerated_turns)} fixed turns", "", "pairs"),
        _card(
            "Injection",
            f"{_int(i.flagged_passages)} / {_int(i.follows_injection_turns)}",
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
            _int(row.requests),
            _int(row.input_tokens),
            _int(row.output_tokens),
            _money(row.cost),
        ]
        for row in o.usage
    ]
    usage = _table(["role", "model", "requests", "input tokens", "output tokens", "est. cost"], usage_rows, "usage")
    extras = []
    if o.flags:
        extras.append("Flags: " + ", ".join(f"{escape(k)} {_int(v)}" for k, v in o.flags.items()))
    if o.failures:
        extras.append("Failures kept in records: " + ", ".join(f"{escape(k)} {_int(v)}" for k, v in o.failures.items()))
    if o.run_summary:
        extras.append("From summary.json: " + "; ".join(_summary_item(k, v) for k, v in o.run_summary.items()))
    extra = "".join(f"<p class='note'>{text}</p>" for text in extras)
    rejections = (
        _plot(figures.rejection_figure(report)) + _rejection_table(o.rejections, "conversations", "rejections")
        if o.rejections
        else "<p class='note'>No conversation was rejected.</p>"
    )
    return _section(
        "glance",
        "At a glance",
        "What the run produced and what it cost. Rejected conversations are kept in rejected.jsonl with the reason.",
        f"<h3>Tokens and cost per role</h3>{usage}{extra}<h3>Why conversations were rejected</h3>{rejections}",
    )


def _structure(report: RunReport) -> str:
    s = report.structure
    link_rows = [
        [escape(row.link), _int(row.planned), _int(row.asked), _int(row.checked), _int(row.realised),
         _pct(row.realisation_rate), _pct(row.in_role_rate)]
        for row in s.links
    ]  # fmt: skip
    links = _table(
        ["link", "planned", "asked", "checked", "realised", "realised / checked", "in role"], link_rows, "links"
    )
    group_rows = [
        [escape(kind), escape(row.name), _int(row.conversations), _int(row.accepted), _pct(row.acceptance_rate),
         _num(row.mean_exchanges)]
        for kind, rows in (("persona", s.personas), ("flow", s.flows))
        for row in rows
    ]  # fmt: skip
    groups = _table(["", "name", "conversations", "accepted", "rate", "mean exchanges"], group_rows, "groups")
    return _section(
        "structure",
        "Structure",
        "How long conversations are, whether the user simulator realised the links the flow planned "
        "(the critic's check of every user turn), and which personas and flows work.",
        "<h3>Exchanges per conversation</h3>"
        + _plot(figures.turns_figure(report))
        + "<h3>Conversation links: planned, asked, realised</h3>"
        + _plot(figures.links_figure(report))
        + _details("Links as a table", links)
        + "<h3>Acceptance per persona and per flow</h3>"
        + _plot(figures.acceptance_figure(s.personas, s.flows))
        + _details("Personas and flows as a table", groups),
    )


def _critic(report: RunReport) -> str:
    c = report.critic
    summary = _table(
        ["replies", "count", "mean score", "median", "p10", "p90"],
        [
            ["accepted", _int(c.accepted_turns), *_summary_cells(c.scores_accepted)],
            ["rejected (incl. regenerated attempts)", _int(c.rejected_turns), *_summary_cells(c.scores_rejected)],
        ],
        "scores",
    )
    signal_rows = [
        [escape(row.name), _num(row.accepted.median), _num(row.rejected.median), _num(row.accepted.mean),
         _num(row.rejected.mean)]
        for row in c.signals
    ]  # fmt: skip
    signals = _table(
        ["signal", "median (accepted)", "median (rejected)", "mean (accepted)", "mean (rejected)"],
        signal_rows,
        "signals",
    )
    decided = ", ".join(f"{escape(k)} {_int(v)}" for k, v in c.decided_by.items())
    turn_rejections = (
        _rejection_table(c.turn_rejections, "replies", "turn-rejections")
        if c.turn_rejections
        else "<p class='note'>The critic rejected no reply.</p>"
    )
    return _section(
        "critic",
        "The critic",
        "Every assistant reply the critic judged, the rejected attempts that a regeneration replaced included. "
        "Well-separated distributions mean the critic's decision rests on clear evidence.",
        "<h3>Combined score</h3>"
        + _plot(figures.score_figure(report))
        + summary
        + "<h3>Grounding signals, accepted against rejected</h3>"
        + "<p class='note'>Boxes span the quartiles, whiskers the 10th to 90th percentile.</p>"
        + _plot(figures.signals_figure(report))
        + _details("Signals as a table", signals)
        + "<h3>Why replies were rejected</h3>"
        + turn_rejections
        + (f"<p class='note'>Decided by: {decided}</p>" if decided else ""),
    )


def _language(report: RunReport) -> str:
    language, reference = report.language, report.reference
    sets = [language] + ([reference] if reference is not None else [])
    rows = [
        ["conversations", *[_int(s.conversations) for s in sets]],
        ["user turns per conversation (median)", *[_num(s.turns_summary.median) for s in sets]],
        ["words per user turn (median)", *[_num(s.user_words_summary.median) for s in sets]],
        ["words per user turn (mean)", *[_num(s.user_words_summary.mean) for s in sets]],
        ["words per assistant turn (median)", *[_num(s.assistant_words_summary.median) for s in sets]],
        ["distinct-1, user turns", *[_num(s.distinct.get("user-1"), 3) for s in sets]],
        ["distinct-2, user turns", *[_num(s.distinct.get("user-2"), 3) for s in sets]],
        ["distinct-1, assistant turns", *[_num(s.distinct.get("assistant-1"), 3) for s in sets]],
        ["distinct-2, assistant turns", *[_num(s.distinct.get("assistant-2"), 3) for s in sets]],
        ["user turns after the first", *[_int(s.later_user_turns) for s in sets]],
        ["… that depend on earlier turns (cues)", *[_pct(s.dependent_share) for s in sets]],
        ["… planned as context-dependent and realised (critic)", *[_pct(s.dependent_by_checks_share) for s in sets]],
        ["user turns repeating an earlier one", *[_pct(s.repeated_question_share) for s in sets]],
        ["near-duplicate conversations (MinHash)", *[_pct(s.near_duplicate_share) for s in sets]],
        ["flagged near_duplicate by the run", *[_pct(s.flagged_near_duplicate_share) for s in sets]],
    ]
    table = _table(["measure", *[escape(s.name) for s in sets]], rows, "language-table")
    sample_note = (
        f"distinct-n on {_int(language.distinct_sample_turns)} turns and near-duplicates on "
        f"{_int(language.near_duplicate_sample)} conversations per set"
        + (", sampled to the same size for both sets, since both measures fall as a set grows" if reference else "")
        + "."
    )
    scope = (
        "the accepted synthetic conversations (the training data)"
        if language.name == "synthetic (accepted)"
        else "every finished synthetic conversation, since the run accepted none"
    )
    intro = f"Measured on {scope}" + (
        f" and, the same way, on the human-written reference set ({reference.name})." if reference else "."
    )
    return _section(
        "language",
        "Language and diversity",
        intro,
        table
        + f"<p class='note'>{escape(sample_note)}</p>"
        + "<h3>Question types</h3>"
        + _plot(figures.question_types_figure(language, reference))
        + "<h3>Turn lengths</h3>"
        + _plot(figures.lengths_figure(language, reference))
        + "<h3>Side by side</h3>"
        + _plot(figures.diversity_figure(language, reference)),
    )


def _injection(report: RunReport) -> str:
    i = report.injection
    cards = "".join(
        [
            _card("Flagged passages", _int(i.flagged_passages), f"in {_int(i.documents_with_flags)} documents", "", ""),
            _card(
                "Conversations shown one", _int(i.conversations_shown_flagged), "at least one flagged passage", "", ""
            ),
            _card(
                "Replies following one",
                _int(i.follows_injection_turns),
                "rejected as follows_injection",
                "bad" if i.follows_injection_turns else "",
                "",
            ),
            _card("Conversations rejected", _int(i.follows_injection_conversations), "for follows_injection", "", ""),
        ]
    )
    markers = ", ".join(f"{escape(k)} {_int(v)}" for k, v in i.markers.items())
    passages = _table(
        ["passage", "markers", "excerpt"],
        [[escape(p.id), escape(", ".join(p.markers)), f"<span class='quote'>{escape(p.excerpt)}</span>"]
         for p in i.passages],
        "flagged-passages",
    )  # fmt: skip
    examples = _table(
        ["conversation", "document", "reply", "reason"],
        [[escape(e.conversation), escape(e.doc), f"<span class='quote'>{escape(e.reply)}</span>", escape(e.reason)]
         for e in i.examples],
        "injection-examples",
    )  # fmt: skip
    content = f"<section class='cards small'>{cards}</section>"
    if markers:
        content += f"<p class='note'>Markers: {markers}</p>"
    if i.passages:
        content += "<h3>Flagged passages</h3>" + passages
    if i.examples:
        content += "<h3>Replies that followed an injected instruction</h3>" + examples
    if not i.passages and not i.examples:
        content += "<p class='note'>No passage carried instruction-like text, and no reply followed one.</p>"
    return _section(
        "injection",
        "Prompt injection",
        "Passages holding instruction-like text aimed at a model are flagged when documents are chunked; "
        "the critic rejects replies that follow them.",
        content,
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
    return _section("definitions", "How it is measured", "", f"<dl>{rows}</dl>")


# ---------------------------------------------------------------- building blocks


def _section(key: str, title: str, intro: str, content: str) -> str:
    lead = f"<p class='lead'>{escape(intro)}</p>" if intro else ""
    return f"<section id='{key}' class='panel'><h2>{escape(title)}</h2>{lead}{content}</section>"


def _card(label: str, value: str, detail: str, tone: str, key: str) -> str:
    data = f" data-metric='{key}'" if key else ""
    return (
        f"<div class='card {tone}'{data}><div class='label'>{escape(label)}</div>"
        f"<div class='value'>{value}</div><div class='detail'>{detail}</div></div>"
    )


def _meter(rate: float | None) -> str:
    width = 0 if rate is None else round(rate * 100)
    return f"<div class='meter'><span style='width:{width}%'></span></div>"


def _plot(figure: go.Figure | None) -> str:
    if figure is None:
        return "<p class='note'>Nothing to plot.</p>"
    html = pio.to_html(figure, full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)
    return f"<div class='plot'>{html}</div>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], key: str) -> str:
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


def _details(summary: str, content: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{content}</details>"


def _rejection_table(rows: Sequence[RejectionRow], unit: str, key: str) -> str:
    body = [
        [
            f"<span class='tag'>{escape(row.category)}</span>",
            _int(row.count),
            _pct(row.share),
            escape(row.example_reason),
            f"<span class='quote'>{escape(row.example_reply)}</span>",
            f"<code>{escape(row.example_conversation)}</code><br><small>{escape(row.example_doc)}</small>",
        ]
        for row in rows
    ]
    return _table(["reason", unit, "share", "example: why", "example: reply", "conversation"], body, key)


def _summary_item(key: str, value: object) -> str:
    label = {"errors": "lost to server errors (retried on resume)", "stopped_because": "stopped because"}.get(key, key)
    if isinstance(value, dict):
        value = ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, dict | list))
    return f"{escape(label.replace('_', ' '))}: {escape(str(value))}"


def _summary_cells(summary: Distribution) -> list[str]:
    return [_num(summary.mean), _num(summary.median), _num(summary.p10), _num(summary.p90)]


# ---------------------------------------------------------------- formatting


def _int(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
