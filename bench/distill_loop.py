"""The CoDi comparison at laptop scale, every number from one run of this script:

1. the student (SmolLM2-135M-Instruct, the embedded model's GGUF read by transformers) zero-shot;
2. the student trained (LoRA) on N codi conversations made over Doc2Dial documents, with the embedded
   135M teacher by default or a strong endpoint (`--teacher-base-url/--teacher-model`);
3. the student trained on human Doc2Dial conversations with the same number of assistant turns;

each scored on `conversations_doc2dial_dev_200.jsonl` (`codi eval-student`). The dev set is never
trained on, and no training conversation is about a document (or dialogue) of the dev set: documents
of dev conversations are removed from both training pools, and the script checks it again before
training. Everything lands in --out and every step resumes (the run, training checkpoints, results).

    python bench/distill_loop.py --n 4 --eval-limit 12 --max-steps 6
    python bench/distill_loop.py --n 200 --eval-limit 1070 --max-steps -1 \
        --teacher-base-url https://api.example.com/v1 --teacher-model big-model   # a strong teacher
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codi_agents import Document, Settings, run
from codi_agents.export import ExportOptions, export_run
from codi_agents.student import (
    TrainOptions,
    eval_student,
    read_reference_turns,
    summarize,
    summary_figure,
    train,
    write_plot,
)
from codi_agents.student._prompt import StudentPrompter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAX_PASSAGES = 3
"""Passages in a training system prompt (codi rows and human rows alike), so that conversations fit --max-length."""


def main() -> None:  # noqa: PLR0915 (the steps of the comparison, in order)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4, help="codi conversations to make and train on")
    parser.add_argument("--eval-limit", type=int, default=12, help="dev agent turns scored per student")
    parser.add_argument("--max-steps", type=int, default=6, help="optimizer steps per training (-1: one epoch)")
    parser.add_argument("--max-length", type=int, default=1024, help="tokens per training conversation")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--teacher-base-url")
    parser.add_argument("--teacher-model")
    parser.add_argument("--teacher-api-key")
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=Path("bench_out/distill_loop"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console(width=140)  # the table stays readable when the output goes to a file
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    dev_file = args.data / "conversations_doc2dial_dev_200.jsonl"
    dev = [json.loads(line) for line in dev_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    dev_docs = {doc["doc_id"] for record in dev for doc in record["documents"]}
    dev_convs = {record["conv_id"] for record in dev}
    timings: dict[str, float] = {}

    # 2. codi conversations over Doc2Dial documents that no dev conversation is about
    step = time.perf_counter()
    documents = [
        Document(id=row["doc_id"], title=row.get("title") or "", text=row["text"])
        for row in map(json.loads, (args.data / "documents_doc2dial_273.jsonl").read_text().splitlines())
        if row["doc_id"] not in dev_docs
    ]
    random.Random(args.seed).shuffle(documents)
    teacher: dict[str, Any] = {}
    if args.teacher_base_url:
        teacher["endpoint"] = {"base_url": args.teacher_base_url, "model": args.teacher_model}
        if args.teacher_api_key:
            teacher["endpoint"]["api_key"] = args.teacher_api_key
    run_dir = args.out / "codi_run"
    console.print(f"[bold]codi run[/]: {args.n} conversations over {len(documents)} non-dev documents -> {run_dir}")
    summary = run(documents[: args.n * 2], run_dir, n=args.n, seed=args.seed, **teacher)
    codi_rows = _export_rows(run_dir, args.out / "codi_export")
    timings["codi run + export"] = time.perf_counter() - step
    assistant_turns = sum(_assistant_turns(row) for row in codi_rows)
    console.print(
        f"accepted {len(codi_rows)} of {summary.get('finished', '?')}; {assistant_turns} assistant turns"
    )

    # 3. human conversations, same number of assistant turns, none about a dev document
    human_rows = _human_rows(args.data / "conversations_doc2dial_50.jsonl", dev_docs, dev_convs, assistant_turns)
    human_file = args.out / "human_train.jsonl"
    human_file.write_text("".join(json.dumps(row) + "\n" for row in human_rows), encoding="utf-8")
    _check_disjoint(codi_rows + human_rows, dev, dev_docs)

    options = TrainOptions(max_steps=args.max_steps, max_length=args.max_length, gradient_accumulation=1,
                           save_steps=max(args.max_steps, 1) if args.max_steps > 0 else 50, seed=args.seed)  # fmt: skip
    students: dict[str, tuple[str, int, int]] = {"zero-shot": ("smollm2", 0, 0)}
    for name, rows, source in (
        ("codi-trained", codi_rows, args.out / "codi_export" / "train.jsonl"),
        ("human-trained", human_rows, human_file),
    ):
        if not rows:
            console.print(f"[yellow]{name}: no training conversations; skipped[/]")
            continue
        step = time.perf_counter()
        target = args.out / f"student_{name}"
        if not (target / "codi_train.json").is_file():
            console.print(f"[bold]train[/] {name} on {len(rows)} conversations -> {target}")
            train(source, target, options, validation_ratio=0.0)
        timings[f"train {name}"] = time.perf_counter() - step
        students[name] = (str(target), len(rows), sum(_assistant_turns(row) for row in rows))

    # 1-3 scored on the dev set
    results: dict[str, Any] = {}
    figures = []
    for name, (model, conversations, turns) in students.items():
        step = time.perf_counter()
        console.print(f"[bold]eval-student[/] {name} on {args.eval_limit} dev turns")
        outcome = eval_student(model, dev_file, args.out / f"eval_{name}.jsonl", Settings(),
                               limit_turns=args.eval_limit, max_new_tokens=args.max_new_tokens)  # fmt: skip
        timings[f"eval {name}"] = time.perf_counter() - step
        rows = summarize(outcome.results)
        figures.append(summary_figure(rows, f"{name} ({conversations} training conversations)"))
        results[name] = {"conversations": conversations, "assistant_turns": turns,
                         "groups": [row.model_dump() for row in rows], "failed": len(outcome.failed)}  # fmt: skip
    _print_table(console, results, args)
    for name, seconds in timings.items():
        console.print(f"{name}: {seconds / 60:.1f} min")
    console.print(f"total: {(time.perf_counter() - started) / 60:.1f} min")
    document = {"args": {k: str(v) for k, v in vars(args).items() if k != "teacher_api_key"}, "results": results,
                "timings_seconds": timings}  # fmt: skip
    (args.out / "distill_loop.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    write_plot(figures, args.out / "distill_loop.html")
    console.print(f"wrote {args.out / 'distill_loop.json'} and {args.out / 'distill_loop.html'}")


def _export_rows(run_dir: Path, out: Path) -> list[dict[str, Any]]:
    """The run's accepted conversations as openai rows (none when it accepted none)."""
    if not (out / "train.jsonl").is_file():
        try:
            export_run(run_dir, "openai", out, ExportOptions(max_passages=MAX_PASSAGES), overwrite=True)
        except Exception as error:  # a run with no accepted conversations: reported, the rest still runs
            Console().print(f"[yellow]export: {error}[/]")
            return []
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines() if line.strip()]


def _assistant_turns(row: dict[str, Any]) -> int:
    return sum(1 for message in row["messages"] if message["role"] == "assistant")


def _human_rows(path: Path, dev_docs: set[str], dev_convs: set[str], budget: int) -> list[dict[str, Any]]:
    """Human conversations as training rows: codi's system prompt over the passages retrieved for their
    user turns (as an export has), until `budget` assistant turns; the last one cut at an assistant turn."""
    references = read_reference_turns(path)
    prompter = StudentPrompter(Settings())
    by_conversation: dict[str, list[Any]] = {}
    for turn in references.turns:
        if turn.document.id not in dev_docs and turn.conv_id not in dev_convs:
            by_conversation.setdefault(turn.conv_id, []).append(turn)
    rows: list[dict[str, Any]] = []
    try:
        for conv_id, turns in by_conversation.items():
            if budget <= 0:
                break
            kept = turns[:budget]
            budget -= len(kept)
            passages = {p.id: p for turn in kept for p in prompter.retrieve(turn)}
            passages = dict(list(passages.items())[:MAX_PASSAGES])
            last = kept[-1]
            messages = [*last.history, {"role": "user", "content": last.question},
                        {"role": "assistant", "content": last.references[0]}]  # fmt: skip
            while messages and messages[0]["role"] != "user":
                messages.pop(0)
            system = prompter.system_prompt(last.document.title or last.document.id, list(passages.values()))
            rows.append({"doc_id": last.document.id, "conv_id": conv_id,
                         "messages": [{"role": "system", "content": system}, *messages]})  # fmt: skip
    finally:
        prompter.close()
    return rows


def _check_disjoint(rows: list[dict[str, Any]], dev: list[dict[str, Any]], dev_docs: set[str]) -> None:
    """Refuse to train on anything about a dev document or dialogue."""
    dev_titles = {doc.get("title") or doc["doc_id"] for record in dev for doc in record["documents"]}
    for row in rows:
        system = row["messages"][0]["content"]
        title = system.split('from the document "', 1)[-1].split('".', 1)[0]
        if row.get("doc_id") in dev_docs or title in dev_titles:
            raise SystemExit(f"a training conversation is about a dev document ({title}); refusing to train")


def _print_table(console: Console, results: dict[str, Any], args: argparse.Namespace) -> None:
    table = Table(title=f"distill loop: student scored on {args.eval_limit} dev turns (Doc2Dial validation)")
    for column in ("student", "train conv.", "asst turns", "F1", "recall", "EM", "BLEU", "abst", "F1 first",
                   "F1 later", "empty", "loop"):  # fmt: skip
        table.add_column(column, justify="left" if column == "student" else "right")
    for name, result in results.items():
        groups = {group["group"]: group for group in result["groups"]}
        overall = groups["overall"]

        def pct(group: str, key: str, scale: float = 100.0, groups: dict[str, Any] = groups) -> str:
            value = groups.get(group, {}).get(key)
            return "–" if value is None else f"{value * scale:.1f}"

        table.add_row(name, str(result["conversations"]), str(result["assistant_turns"]), pct("overall", "f1"),
                      pct("overall", "recall"), pct("overall", "em"), pct("overall", "bleu", 1.0),
                      pct("overall", "abstained"), pct("first turn", "f1"), pct("later turns", "f1"),
                      str(overall["empty"]), str(overall["looping"]))  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
