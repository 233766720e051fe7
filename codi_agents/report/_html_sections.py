"""The report page's sections on the conversations: structure, critic, language, injection."""

from __future__ import annotations

from html import escape

from codi_agents.report import _figures as figures
from codi_agents.report import _language_figures as language_figures
from codi_agents.report._html_blocks import (
    card,
    details,
    html_table,
    integer,
    number,
    percent,
    plot,
    rejection_table,
    section,
    summary_cells,
)
from codi_agents.report._schema import RunReport


def structure_section(report: RunReport) -> str:
    s = report.structure
    link_rows = [
        [escape(row.link), integer(row.planned), integer(row.asked), integer(row.checked), integer(row.realised),
         percent(row.realisation_rate), percent(row.in_role_rate)]
        for row in s.links
    ]  # fmt: skip
    links = html_table(
        ["link", "planned", "asked", "checked", "realised", "realised / checked", "in role"], link_rows, "links"
    )
    group_rows = [
        [escape(kind), escape(row.name), integer(row.conversations), integer(row.accepted),
         percent(row.acceptance_rate), number(row.mean_exchanges)]
        for kind, rows in (("persona", s.personas), ("flow", s.flows))
        for row in rows
    ]  # fmt: skip
    groups = html_table(["", "name", "conversations", "accepted", "rate", "mean exchanges"], group_rows, "groups")
    return section(
        "structure",
        "Structure",
        "How long conversations are, whether the user simulator realised the links the flow planned "
        "(the critic's check of every user turn), and which personas and flows work.",
        "<h3>Exchanges per conversation</h3>"
        + plot(figures.turns_figure(report))
        + "<h3>Conversation links: planned, asked, realised</h3>"
        + plot(figures.links_figure(report))
        + details("Links as a table", links)
        + "<h3>Acceptance per persona and per flow</h3>"
        + plot(figures.acceptance_figure(s.personas, s.flows))
        + details("Personas and flows as a table", groups),
    )


def critic_section(report: RunReport) -> str:
    c = report.critic
    summary = html_table(
        ["replies", "count", "mean score", "median", "p10", "p90"],
        [
            ["accepted", integer(c.accepted_turns), *summary_cells(c.scores_accepted)],
            ["rejected (incl. regenerated attempts)", integer(c.rejected_turns), *summary_cells(c.scores_rejected)],
        ],
        "scores",
    )
    signal_rows = [
        [escape(row.name), number(row.accepted.median), number(row.rejected.median), number(row.accepted.mean),
         number(row.rejected.mean)]
        for row in c.signals
    ]  # fmt: skip
    signals = html_table(
        ["signal", "median (accepted)", "median (rejected)", "mean (accepted)", "mean (rejected)"],
        signal_rows,
        "signals",
    )
    decided = ", ".join(f"{escape(k)} {integer(v)}" for k, v in c.decided_by.items())
    turn_rejections = (
        rejection_table(c.turn_rejections, "replies", "turn-rejections")
        if c.turn_rejections
        else "<p class='note'>The critic rejected no reply.</p>"
    )
    return section(
        "critic",
        "The critic",
        "Every assistant reply the critic judged, the rejected attempts that a regeneration replaced included. "
        "Well-separated distributions mean the critic's decision rests on clear evidence.",
        "<h3>Combined score</h3>"
        + plot(figures.score_figure(report))
        + summary
        + "<h3>Grounding signals, accepted against rejected</h3>"
        + "<p class='note'>Boxes span the quartiles, whiskers the 10th to 90th percentile.</p>"
        + plot(figures.signals_figure(report))
        + details("Signals as a table", signals)
        + "<h3>Why replies were rejected</h3>"
        + turn_rejections
        + (f"<p class='note'>Decided by: {decided}</p>" if decided else ""),
    )


def language_section(report: RunReport) -> str:
    language, reference = report.language, report.reference
    sets = [language] + ([reference] if reference is not None else [])
    rows = [
        ["conversations", *[integer(s.conversations) for s in sets]],
        ["user turns per conversation (median)", *[number(s.turns_summary.median) for s in sets]],
        ["words per user turn (median)", *[number(s.user_words_summary.median) for s in sets]],
        ["words per user turn (mean)", *[number(s.user_words_summary.mean) for s in sets]],
        ["words per assistant turn (median)", *[number(s.assistant_words_summary.median) for s in sets]],
        ["distinct-1, user turns", *[number(s.distinct.get("user-1"), 3) for s in sets]],
        ["distinct-2, user turns", *[number(s.distinct.get("user-2"), 3) for s in sets]],
        ["distinct-1, assistant turns", *[number(s.distinct.get("assistant-1"), 3) for s in sets]],
        ["distinct-2, assistant turns", *[number(s.distinct.get("assistant-2"), 3) for s in sets]],
        ["user turns after the first", *[integer(s.later_user_turns) for s in sets]],
        ["… that depend on earlier turns (cues)", *[percent(s.dependent_share) for s in sets]],
        ["… planned as context-dependent and realised (critic)", *[percent(s.dependent_by_checks_share) for s in sets]],
        ["user turns repeating an earlier one", *[percent(s.repeated_question_share) for s in sets]],
        ["near-duplicate conversations (MinHash)", *[percent(s.near_duplicate_share) for s in sets]],
        ["flagged near_duplicate by the run", *[percent(s.flagged_near_duplicate_share) for s in sets]],
    ]
    table = html_table(["measure", *[escape(s.name) for s in sets]], rows, "language-table")
    sample_note = (
        f"distinct-n on {integer(language.distinct_sample_turns)} turns and near-duplicates on "
        f"{integer(language.near_duplicate_sample)} conversations per set"
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
    return section(
        "language",
        "Language and diversity",
        intro,
        table
        + f"<p class='note'>{escape(sample_note)}</p>"
        + "<h3>Question types</h3>"
        + plot(language_figures.question_types_figure(language, reference))
        + "<h3>Turn lengths</h3>"
        + plot(language_figures.lengths_figure(language, reference))
        + "<h3>Side by side</h3>"
        + plot(language_figures.diversity_figure(language, reference)),
    )


def injection_section(report: RunReport) -> str:
    i = report.injection
    cards = "".join(
        [
            card(
                "Flagged passages",
                integer(i.flagged_passages),
                f"in {integer(i.documents_with_flags)} documents",
                "",
                "",
            ),
            card(
                "Conversations shown one",
                integer(i.conversations_shown_flagged),
                "at least one flagged passage",
                "",
                "",
            ),
            card(
                "Replies following one",
                integer(i.follows_injection_turns),
                "rejected as follows_injection",
                "bad" if i.follows_injection_turns else "",
                "",
            ),
            card("Conversations rejected", integer(i.follows_injection_conversations), "for follows_injection", "", ""),
        ]
    )
    markers = ", ".join(f"{escape(k)} {integer(v)}" for k, v in i.markers.items())
    passages = html_table(
        ["passage", "markers", "excerpt"],
        [[escape(p.id), escape(", ".join(p.markers)), f"<span class='quote'>{escape(p.excerpt)}</span>"]
         for p in i.passages],
        "flagged-passages",
    )  # fmt: skip
    examples = html_table(
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
    return section(
        "injection",
        "Prompt injection",
        "Passages holding instruction-like text aimed at a model are flagged when documents are chunked; "
        "the critic rejects replies that follow them.",
        content,
    )
