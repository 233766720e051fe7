"""A run's quality report: one self-contained HTML page and the same numbers as JSON.

Example::

    from codi_agents.report import build_report, write_report
    report = build_report("runs/dmv", reference="conversations_doc2dial_50.jsonl")
    write_report(report, "report.html", json_path="report.json")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from codi_agents._security import redact
from codi_agents.errors import ReferenceDataError
from codi_agents.report._collect import collect_report, prices_from_manifest
from codi_agents.report._language import Dialogue
from codi_agents.report._reference import read_reference
from codi_agents.report._schema import RunReport
from codi_agents.rundir._reader import RunDirectory

__all__ = [
    "Dialogue",
    "ReferenceDataError",
    "RunReport",
    "build_report",
    "prices_from_manifest",
    "read_reference",
    "render_html",
    "write_report",
]


def build_report(
    run_dir: Path | str,
    reference: Path | str | None = None,
    *,
    reference_name: str | None = None,
    prices: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
) -> RunReport:
    """Measure a run directory, and a human reference set (Doc2Dial-style JSONL) alongside it if given.

    `prices` (role -> input, output per 1k tokens) override those in the run's manifest.
    """
    run = RunDirectory.open(run_dir)
    dialogues = read_reference(reference) if reference is not None else None
    name = reference_name or (Path(reference).stem if reference is not None else "reference")
    return collect_report(run, dialogues, reference_name=name, prices=prices, seed=seed)


def render_html(report: RunReport) -> str:
    """The report page as a string."""
    from codi_agents.report._html import render_html as render

    return render(report)


def write_report(
    report: RunReport, html_path: Path | str, *, json_path: Path | str | None = None, secrets: Iterable[str] = ()
) -> list[Path]:
    """Write the page (and the JSON numbers); `secrets` are masked wherever they would appear."""
    secrets = list(secrets)
    written = []
    targets: list[tuple[Path | str | None, str]] = [(html_path, "html"), (json_path, "json")]
    for target, kind in targets:
        if target is None:
            continue
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render_html(report) if kind == "html" else report.model_dump_json(indent=2)
        path.write_text(redact(text, secrets), encoding="utf-8")
        written.append(path)
    return written
