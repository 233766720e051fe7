"""Turn a run into training data and a quality report.

    python examples/export_and_report.py [RUN_DIR]      # default: runs/example (made by run_batch.py)

Exports the accepted conversations of RUN_DIR twice: as OpenAI chat JSONL (`{"messages": [...]}`)
with a quarter of the documents held out for validation, and as a Hugging Face dataset
(`datasets.load_from_disk`). Then builds the HTML report, with human Doc2Dial conversations
alongside for comparison, and prints a few of its numbers. When RUN_DIR holds no run yet, it runs
examples/run_batch.py first. A run with nothing accepted (common with the embedded 135M model)
has nothing to export: the export says so, and the report still explains why.
"""

from __future__ import annotations

import sys
from pathlib import Path

import run_batch  # examples/run_batch.py: the script's folder is on the import path
from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents.export import ExportError, ExportOptions, export_run
from codi_agents.llm._models import ModelsArgument
from codi_agents.report import RunReport, build_report, write_report

EXAMPLES = Path(__file__).parent
HUMAN_CONVERSATIONS = EXAMPLES.parent / "tests" / "data" / "doc2dial_conversations.jsonl"


def main(
    run_dir: Path | str = "runs/example",
    models: ModelsArgument = None,
    embedding_function: EmbeddingFunction[Documents] | None = None,
) -> RunReport:
    """Export `run_dir` to `run_dir`/data/{openai,hf}, write `run_dir`/report.html; return the report."""
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").exists():
        run_batch.main(run_dir, models=models, embedding_function=embedding_function)

    options = ExportOptions(validation_ratio=0.25, seed=0)  # split by document: none on both sides
    for format in ("openai", "hf"):
        try:
            result = export_run(run_dir, format, run_dir / "data" / format, options, overwrite=True)
        except ExportError as error:  # nothing accepted, or everything filtered out: the message says which
            print(f"export {format}: {error}")
            continue
        print(f"export {format}: {result.rows} rows, documents per split {result.documents} -> {result.out}")

    report = build_report(run_dir, reference=HUMAN_CONVERSATIONS, reference_name="Doc2Dial (human)")
    written = write_report(report, run_dir / "report.html", json_path=run_dir / "report.json")
    overview = report.overview
    print(f"report: {', '.join(str(path) for path in written)}")
    print(f"  {overview.accepted} accepted, {overview.rejected} rejected of {overview.conversations} conversations")
    for row in overview.rejections:
        print(f"  rejected as {row.category}: {row.count}")
    for stats in (report.language, report.reference):
        if stats is None:
            continue
        words, distinct = stats.user_words_summary.median, stats.distinct.get("user-1")
        shown = "-" if distinct is None else f"{distinct:.2f}"
        print(f"  {stats.name}: {stats.user_turns} user turns, median {words} words, distinct-1 {shown}")
    return report


if __name__ == "__main__":
    main(*sys.argv[1:2])
