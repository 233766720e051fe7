"""`codi report`: the numbers against the records they come from, the Doc2Dial reference, a page that
is self-contained and escapes what documents smuggle in, clear errors, and a real browser rendering it."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DATA
from test_export_rundir import PAYLOAD_SITE, PLANNED, RunFacts, build_run_dir, run_manifest, run_summary

from codi_agents.cli import main
from codi_agents.errors import ReferenceDataError
from codi_agents.export import ExportOptions, RunDirectoryError, TornLineWarning, export_run
from codi_agents.report import RunReport, build_report, read_reference, render_html, write_report

REFERENCE = DATA / "doc2dial_conversations.jsonl"


@pytest.fixture(scope="module")
def run_facts(tmp_path_factory: pytest.TempPathFactory) -> RunFacts:
    return build_run_dir(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def report(run_facts: RunFacts) -> RunReport:
    return build_report(run_facts.path, REFERENCE, reference_name="Doc2Dial")


def test_the_run_at_a_glance_matches_the_records(run_facts: RunFacts, report: RunReport) -> None:
    o = report.overview
    conversations = run_facts.conversations
    assert (o.conversations, o.accepted, o.rejected, o.planned) == (11, 8, 3, PLANNED)
    assert o.acceptance_rate == pytest.approx(8 / 11)
    assert o.tasks == ["grounded_qa"] and o.fingerprint == run_facts.accepted[0].settings_fingerprint
    for row in o.usage:
        assert row.input_tokens == sum(c.usage[row.role].input_tokens for c in conversations if row.role in c.usage)
        assert row.output_tokens == sum(c.usage[row.role].output_tokens for c in conversations if row.role in c.usage)
    assistant = next(row for row in o.usage if row.role == "assistant")
    assert assistant.cost == pytest.approx((assistant.input_tokens * 0.5 + assistant.output_tokens * 1.5) / 1000)
    assert o.total_cost == assistant.cost, "only the assistant has a price in the manifest"
    assert {row.role: row.cost for row in o.usage}["critic"] is None
    rejections = Counter(c.rejection for c in run_facts.rejected)
    assert {row.category: row.count for row in o.rejections} == rejections
    injection_row = next(row for row in o.rejections if row.category == "follows_injection")
    assert PAYLOAD_SITE in injection_row.example_reply and injection_row.example_doc == run_facts.injected_doc_id
    assert o.flags == {"near_duplicate": 1}
    assert o.wall_time_source == "records" and o.wall_time_seconds is not None and o.wall_time_seconds > 0


def test_summary_json_of_the_run_supplies_wall_time_and_what_only_the_run_knows(
    run_facts: RunFacts, tmp_path: Path
) -> None:
    for name in ("accepted.jsonl", "rejected.jsonl", "manifest.json"):
        shutil.copy(run_facts.path / name, tmp_path / name)
    summary = run_summary(planned=13, wall_seconds=754.5, errors=2, used=9)
    (tmp_path / "summary.json").write_text(summary.model_dump_json())
    o = build_report(tmp_path).overview
    assert (o.wall_time_seconds, o.wall_time_source, o.planned) == (754.5, "summary.json", 13)
    assert o.run_summary["status"] == "incomplete" and o.run_summary["errors"] == 2
    assert o.run_summary["documents"]["used"] == 9 and "stopped_because" not in o.run_summary
    assert "lost to server errors (retried on resume): 2" in render_html(build_report(tmp_path))


def test_prices_given_by_the_user_override_the_manifest(run_facts: RunFacts) -> None:
    priced = build_report(run_facts.path, prices={"critic": (1.0, 2.0)})
    costs = {row.role: row.cost for row in priced.overview.usage}
    critic = next(row for row in priced.overview.usage if row.role == "critic")
    assert costs["critic"] == pytest.approx((critic.input_tokens + 2 * critic.output_tokens) / 1000)
    assert costs["assistant"] is None and priced.overview.total_cost == costs["critic"]


def test_structure_links_and_groups_match_the_records(run_facts: RunFacts, report: RunReport) -> None:
    s = report.structure
    conversations = run_facts.conversations
    assert s.exchanges_accepted == dict(Counter(c.exchanges for c in run_facts.accepted))
    assert s.exchanges_rejected == {1: 3}
    planned = Counter(link for c in conversations for link in c.path)
    checked = [t for c in conversations for t in c.turns if t.role == "user" and t.check]
    for row in s.links:
        assert row.planned == planned[row.link]
        asked = [t for t in checked if t.link == row.link and t.check]
        assert row.checked == len(asked)
        assert row.realised == sum(1 for t in asked if t.check and t.check.link_realised)
        in_role = sum(1 for t in asked if t.check and t.check.in_role)
        assert row.in_role_rate == (pytest.approx(in_role / len(asked)) if asked else None)
    unanswerable = next(row for row in s.links if row.link == "unanswerable")
    assert unanswerable.realisation_rate == 0.0, "scripted users answer their own unanswerable questions"
    personas = {row.name: (row.conversations, row.accepted) for row in s.personas}
    assert personas["journalist"] == (2, 1) and personas["caregiver"] == (1, 1)
    assert {row.name: row.acceptance_rate for row in s.flows}["factoid_short"] == 0.5
    assert s.regenerated_turns == 2
    pairs = export_run(run_facts.path, "preference", run_facts.path.parent / "pairs", ExportOptions())
    assert s.preference_pairs == pairs.rows["train"] == 3


def test_the_critic_section_counts_every_verdict(run_facts: RunFacts, report: RunReport) -> None:
    c = report.critic
    verdicts = [
        verdict
        for conversation in run_facts.conversations
        for turn in conversation.turns
        for verdict in [*(a.verdict for a in turn.rejected_attempts), turn.verdict]
        if verdict is not None
    ]
    accepted = [v for v in verdicts if v.accepted]
    rejected = [v for v in verdicts if not v.accepted]
    assert (c.accepted_turns, c.rejected_turns) == (len(accepted), len(rejected))
    assert c.score_histogram_accepted is not None and sum(c.score_histogram_accepted.counts) == len(accepted)
    assert c.scores_rejected.median == pytest.approx(statistics.median(v.score for v in rejected))
    signals = {row.name: row for row in c.signals}
    assert signals["novel_numbers"].accepted.max == 0 and (signals["novel_numbers"].rejected.max or 0) >= 1
    assert signals["injection_echo"].rejected.max == 1.0
    assert {row.category: row.count for row in c.turn_rejections} == Counter(v.rejection for v in rejected)


def test_injection_counts(run_facts: RunFacts, report: RunReport) -> None:
    i = report.injection
    suspicious = {p.id for c in run_facts.conversations for p in c.passages.values() if p.suspicious}
    injected = {pid for pid in suspicious if pid.startswith("injected-plates")}
    assert i.flagged_passages == len(suspicious) and injected
    assert i.markers["override_instructions"] == len(injected)
    # the trained detector flags the injected passage too, and one ordinary Doc2Dial DMV passage ("... inform the
    # police officer writing you a ticket."): a false alarm of the shipped detector, see checkers/models/injection.md
    assert i.markers.get("detector", 0) >= len(injected) and i.documents_with_flags <= 2
    assert any("ignore all previous instructions" in passage.excerpt for passage in i.passages)
    assert i.follows_injection_turns == 3  # two rejected attempts and the final reply of the same turn
    assert i.follows_injection_conversations == 1
    assert PAYLOAD_SITE in i.examples[0].reply


def test_language_against_the_doc2dial_reference(run_facts: RunFacts, report: RunReport) -> None:
    language, reference = report.language, report.reference
    assert reference is not None and reference.name == "Doc2Dial"
    assert language.conversations == 8 and language.flagged_near_duplicate_share == pytest.approx(1 / 8)
    assert language.user_turns == sum(c.exchanges for c in run_facts.accepted)
    rows = [json.loads(line) for line in REFERENCE.read_text().splitlines()]
    assert reference.conversations == len(rows) == 8
    assert reference.user_turns == sum(1 for r in rows for t in r["turns"] if t["role"] == "user")
    assert reference.assistant_turns == sum(1 for r in rows for t in r["turns"] if t["role"] == "agent" and t["text"])
    assert reference.assistant_turns < sum(1 for r in rows for t in r["turns"] if t["role"] == "agent")
    assert (
        language.distinct_sample_turns
        == reference.distinct_sample_turns
        == min(language.user_turns, reference.user_turns)
    )
    assert reference.dependent_by_checks_share is None and language.dependent_by_checks_share is not None
    assert sum(reference.question_types.values()) == reference.user_turns


def test_a_run_that_accepted_nothing_is_measured_on_what_it_generated(run_facts: RunFacts, tmp_path: Path) -> None:
    (tmp_path / "rejected.jsonl").write_text((run_facts.path / "rejected.jsonl").read_text())
    language = build_report(tmp_path, REFERENCE).language
    assert language.name == "synthetic (all finished; none accepted)"
    assert language.conversations == 3 and language.user_turns == sum(c.exchanges for c in run_facts.rejected)


def test_reference_errors_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match="does not exist"):
        read_reference(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"turns": [{"role": "user", "text": "Hi?"}]}\n{"turns": [{"role": "narrator", "text": "x"}]}\n')
    with pytest.raises(ReferenceDataError, match=r"bad\.jsonl, line 2: turn 0 has role 'narrator'"):
        list(read_reference(bad))
    bad.write_text("\n\n")
    with pytest.raises(ReferenceDataError, match="holds no conversations"):
        list(read_reference(bad))


def test_an_empty_run_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "accepted.jsonl").write_text("")
    with pytest.raises(RunDirectoryError, match="holds no conversations yet"):
        build_report(tmp_path)


def test_a_torn_last_line_is_reported_on_the_page(run_facts: RunFacts, tmp_path: Path) -> None:
    text = (run_facts.path / "rejected.jsonl").read_text()
    (tmp_path / "rejected.jsonl").write_text(text[:-50])
    (tmp_path / "accepted.jsonl").write_text((run_facts.path / "accepted.jsonl").read_text())
    with pytest.warns(TornLineWarning):
        torn = build_report(tmp_path)
    assert torn.overview.rejected == 2 and "rejected.jsonl, line 3" in torn.overview.warnings[0]
    assert "rejected.jsonl, line 3: the last line is cut off" in render_html(torn)


def test_the_page_is_self_contained_and_holds_the_numbers(report: RunReport, tmp_path: Path) -> None:
    html = render_html(report)
    head, bundle_and_rest = html.split("<script type='text/javascript'>", 1)
    bundle, rest = bundle_and_rest.split("</script>", 1)
    assert len(bundle) > 1_000_000 and "Plotly" in bundle, "plotly.js is inlined in the head"
    page = head + rest
    assert rest.count("Plotly.newPlot(") >= 9
    assert "<script src" not in page and "cdn.plot.ly" not in page and "<link" not in page, "nothing from the network"
    assert html.count("<script type='text/javascript'>") == 1, "plotly.js is included once"
    assert "data-metric='accepted'" in html and ">72.7%<" in html
    assert "Doc2Dial" in html and "follows_injection" in html


def test_text_from_documents_is_escaped(run_facts: RunFacts, tmp_path: Path) -> None:
    hostile = run_facts.rejected[0].model_copy(deep=True)
    hostile.doc_id = "<script>alert('doc')</script>"
    hostile.turns[-1].content = "<img src=x onerror=alert(1)>"
    hostile.rejection_reason = "<b>bold</b> reason"
    (tmp_path / "rejected.jsonl").write_text(hostile.model_dump_json() + "\n")
    html = render_html(build_report(tmp_path))
    for raw in ("<script>alert('doc')</script>", "<img src=x onerror", "<b>bold</b>"):
        assert raw not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def codi(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    try:
        main(list(args))
        code = 0
    except SystemExit as exit:
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def test_cli_writes_page_and_json_and_keeps_keys_out(
    run_facts: RunFacts, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-REPORTKEY-0123456789abcdef"
    run = tmp_path / "run"
    run.mkdir()
    leaky = [c.model_copy(deep=True) for c in run_facts.rejected]
    leaky[0].rejection_reason = f"server said: invalid key {key}"
    (run / "rejected.jsonl").write_text("".join(c.model_dump_json() + "\n" for c in leaky))
    (run / "manifest.json").write_text(run_manifest(planned=3, settings={"api_key": key}).model_dump_json())
    monkeypatch.setenv("OPENAI_API_KEY", key)
    page, numbers = tmp_path / "out" / "report.html", tmp_path / "out" / "report.json"
    result = codi(
        capsys, "report", str(run), "--reference", str(REFERENCE), "--out", str(page), "--json", str(numbers),
        "--price", "assistant=0.15,0.6",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "0 accepted, 3 rejected" in result.stdout and f"wrote {page}" in result.stdout
    data = json.loads(numbers.read_text())
    assert data["overview"]["rejected"] == 3 and data["overview"]["planned"] == 3
    assert data["reference"]["conversations"] == 8
    assert data["overview"]["usage"][0]["role"] == "assistant" and data["overview"]["usage"][0]["cost"] > 0
    for path in (page, numbers):
        assert key not in path.read_text()
    assert key not in result.stdout + result.stderr
    assert "sk-…cdef" in numbers.read_text()

    bad_price = codi(capsys, "report", str(run), "--out", str(page), "--price", "assistant=cheap")
    assert bad_price.returncode == 2 and "ROLE=IN,OUT" in bad_price.stderr
    missing = codi(capsys, "report", str(run), "--reference", str(tmp_path / "nope.jsonl"), "--out", str(page))
    assert missing.returncode == 2 and "nope.jsonl does not exist" in missing.stderr.replace("\n", "")


def find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.browser
def test_the_page_renders_in_headless_chromium(report: RunReport, tmp_path: Path) -> None:
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium or Chrome on PATH: install the `chromium` package (as .ci/run does) to run this test")
    page = tmp_path / "report.html"
    write_report(report, page)
    dom = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=180, check=False,
    ).stdout  # fmt: skip
    assert "plot-container" in dom, "plotly did not render: no .plot-container in the rendered DOM"
    assert dom.count('class="main-svg"') >= 2 * 9, "every figure draws its SVG layers"
    assert dom.count("plotly-graph-div") >= 9
    assert ">72.7%<" in dom and ">8<" in dom
    assert "Doc2Dial" in dom and "synthetic (accepted)" in dom
    assert "unanswerable" in dom, "axis labels are drawn into the SVG"


def rewritten_run(facts: RunFacts, path: Path, **changes: object) -> Path:
    """A copy of the run's records with fields changed (e.g. a flow that is not installed here)."""
    path.mkdir()
    for which, records in (("accepted", facts.accepted), ("rejected", facts.rejected)):
        lines = [c.model_copy(update=changes).model_dump_json() for c in records]
        (path / f"{which}.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


def test_the_report_reads_link_phenomena_from_the_records_not_from_flow_files(
    run_facts: RunFacts, report: RunReport, tmp_path: Path
) -> None:
    kept = report.language.dependent_by_checks_share
    assert kept is not None and kept > 0
    assert all(c.link_phenomena for c in run_facts.conversations)
    private = rewritten_run(run_facts, tmp_path / "private", flow="private_flow_not_installed")
    assert build_report(private, REFERENCE).language.dependent_by_checks_share == kept
    old = rewritten_run(run_facts, tmp_path / "old", link_phenomena=None)
    assert build_report(old, REFERENCE).language.dependent_by_checks_share == kept  # the installed flow, read back


def test_old_records_of_a_flow_not_installed_count_as_unknown_and_say_so(run_facts: RunFacts, tmp_path: Path) -> None:
    old = rewritten_run(run_facts, tmp_path / "old", link_phenomena=None, flow="old_private_flow")
    with pytest.warns(UserWarning, match=r"flow 'old_private_flow' \(task 'grounded_qa'\).*not installed"):
        language = build_report(old, REFERENCE).language
    assert language.dependent_by_checks_share == 0
