"""`codi export`: every format read back by its consumer (datasets for hf and preference, JSON shapes
for OpenAI and ShareGPT), the filters, the split by document, and clear errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from test_export_rundir import INVENTED, RunFacts, build_run_dir, run_manifest

from codi_agents import Conversation, load_persona
from codi_agents._record import Turn
from codi_agents.cli import main
from codi_agents.errors import TaskError
from codi_agents.export import (
    ExportError,
    ExportOptions,
    RunDirectoryError,
    TornLineWarning,
    conversation_score,
    export_run,
    split_documents,
)
from codi_agents.export._formats import training_messages
from codi_agents.inputs._passages import Passage
from codi_agents.tasks import get_task

TRL_COLUMNS = {"prompt", "completion", "chosen", "rejected", "text", "messages"}
"""Columns TRL's trainers interpret; an SFT dataset must carry `messages` and none of the others."""


@pytest.fixture(scope="module")
def run_facts(tmp_path_factory: pytest.TempPathFactory) -> RunFacts:
    return build_run_dir(tmp_path_factory.mktemp("run"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def exported(facts: RunFacts) -> list[Conversation]:
    """Accepted conversations that the default filters keep (near-duplicates dropped)."""
    return [c for c in facts.accepted if "near_duplicate" not in c.flags]


def is_conversational(example: dict[str, Any]) -> bool:
    """TRL's `is_conversational`: a known column holding a list of dicts with a `role`."""
    for key in ("prompt", "chosen", "rejected", "completion", "messages"):
        value = example.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict) and "role" in value[0]:
            return True
    return False


def test_openai_lines_hold_only_messages_with_the_grounding_passages(run_facts: RunFacts, tmp_path: Path) -> None:
    result = export_run(run_facts.path, "openai", tmp_path / "out")
    lines = read_jsonl(tmp_path / "out" / "train.jsonl")
    expected = exported(run_facts)
    assert result.rows == {"train": len(expected)} and len(lines) == len(expected) == 7
    for line, conversation in zip(lines, expected, strict=True):
        assert set(line) == {"messages"}
        messages = line["messages"]
        assert messages == training_messages(conversation, get_task(conversation.task))
        assert messages[0]["role"] == "system" and "<passage id=" in messages[0]["content"]
        assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * conversation.exchanges
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in messages)
    assert not (tmp_path / "out" / "validation.jsonl").exists()
    info = json.loads((tmp_path / "out" / "export_info.json").read_text())
    assert info["format"] == "openai" and info["rows"] == {"train": 7}
    assert info["conversations"]["near_duplicate"] == 1


def test_dropping_near_duplicates_warns_when_the_run_never_looked_for_them(run_facts: RunFacts, tmp_path: Path) -> None:
    import shutil

    unchecked = tmp_path / "unchecked"
    shutil.copytree(run_facts.path, unchecked)
    manifest = json.loads((unchecked / "manifest.json").read_text())
    manifest["config"]["dedup"] = {"enabled": False}
    (unchecked / "manifest.json").write_text(json.dumps(manifest))
    warned = export_run(unchecked, "openai", tmp_path / "a", ExportOptions())
    assert any("near-duplicate detection off" in warning for warning in warned.warnings)
    quiet = export_run(run_facts.path, "openai", tmp_path / "b", ExportOptions())
    kept = export_run(unchecked, "openai", tmp_path / "c", ExportOptions(drop_near_duplicates=False))
    assert not quiet.warnings and not kept.warnings


def test_max_passages_limits_the_system_prompt(run_facts: RunFacts, tmp_path: Path) -> None:
    export_run(run_facts.path, "openai", tmp_path / "out", ExportOptions(max_passages=2))
    for line in read_jsonl(tmp_path / "out" / "train.jsonl"):
        assert 1 <= line["messages"][0]["content"].count("<passage id=") <= 2
    unlimited = max(len(c.grounding_passages()) for c in exported(run_facts))
    assert unlimited > 2, "the fixture must have conversations grounded on more passages than the limit"


def test_a_passage_limit_keeps_the_best_passage_of_every_answer_before_second_ones() -> None:
    passages = {f"doc:{i}": Passage(id=f"doc:{i}", doc_id="doc", index=i, text=f"Fact {i}.") for i in range(6)}
    turns = []
    for first, second in ((0, 1), (2, 3), (4, 5)):  # each answer rests on two passages, best first
        turns.append(Turn(role="user", content="Question?"))
        turns.append(Turn(role="assistant", content="Answer.", passage_ids=[f"doc:{first}", f"doc:{second}"]))
    conversation = Conversation(
        id="c", task="grounded_qa", doc_id="doc", persona=load_persona("curious_student"), flow="f", path=[],
        turns=turns, passages=passages,
    )  # fmt: skip
    assert [p.id for p in conversation.grounding_passages(3)] == ["doc:0", "doc:2", "doc:4"]
    assert [p.id for p in conversation.grounding_passages(4)] == ["doc:0", "doc:1", "doc:2", "doc:4"]
    assert len(conversation.grounding_passages()) == 6


def test_sharegpt_uses_from_and_value_with_the_same_turns(run_facts: RunFacts, tmp_path: Path) -> None:
    export_run(run_facts.path, "sharegpt", tmp_path / "out")
    lines = read_jsonl(tmp_path / "out" / "train.jsonl")
    for line, conversation in zip(lines, exported(run_facts), strict=True):
        assert set(line) == {"id", "conversations"} and line["id"] == conversation.id
        turns = line["conversations"]
        assert all(set(turn) == {"from", "value"} for turn in turns)
        assert [t["from"] for t in turns] == ["system"] + ["human", "gpt"] * conversation.exchanges
        assert [t["value"] for t in turns] == [
            m["content"] for m in training_messages(conversation, get_task(conversation.task))
        ]


def test_hf_dataset_loads_with_datasets_in_trl_conversational_format(run_facts: RunFacts, tmp_path: Path) -> None:
    from datasets import DatasetDict, Value, load_from_disk

    out = tmp_path / "hf"
    result = export_run(run_facts.path, "hf", out, ExportOptions(validation_ratio=0.3, seed=1))
    dataset = load_from_disk(str(out))
    assert isinstance(dataset, DatasetDict) and set(dataset) == {"train", "validation"}
    assert (
        dataset["train"].num_rows == result.rows["train"]
        and dataset["validation"].num_rows == result.rows["validation"]
    )
    assert dataset["train"].num_rows + dataset["validation"].num_rows == 7
    features = dataset["train"].features
    message = features["messages"].feature if hasattr(features["messages"], "feature") else features["messages"][0]
    assert message == {"role": Value("string"), "content": Value("string")}
    assert TRL_COLUMNS & set(dataset["train"].column_names) == {"messages"}
    by_id = {c.id: c for c in run_facts.accepted}
    for split in ("train", "validation"):
        for row in dataset[split]:
            assert is_conversational(row)
            conversation = by_id[row["id"]]
            assert row["messages"] == training_messages(conversation, get_task(conversation.task))
            assert row["persona"] == conversation.persona.name and row["flow"] == conversation.flow
            assert row["doc_id"] == conversation.doc_id
            assert row["links"] == [t.link for t in conversation.turns if t.role == "user"]
            assert row["links_realised"] == [t.check.link_realised for t in conversation.turns if t.check]
            assert row["min_score"] == pytest.approx(conversation_score(conversation))
            assert row["regenerations"] == sum(len(t.rejected_attempts) for t in conversation.turns)
    from datasets import load_dataset

    parquet = load_dataset(
        "parquet",
        data_files={split: str(out / "parquet" / f"{split}.parquet") for split in ("train", "validation")},
        cache_dir=str(tmp_path / "cache"),
    )
    assert {split: parquet[split]["id"] for split in parquet} == {split: dataset[split]["id"] for split in dataset}
    train_docs = set(dataset["train"]["doc_id"])
    validation_docs = set(dataset["validation"]["doc_id"])
    assert train_docs and validation_docs and not train_docs & validation_docs


def test_preference_pairs_put_the_rejected_attempt_against_the_accepted_regeneration(
    run_facts: RunFacts, tmp_path: Path
) -> None:
    from datasets import load_dataset

    export_run(run_facts.path, "preference", tmp_path / "dpo")
    pairs = read_jsonl(tmp_path / "dpo" / "train.jsonl")
    assert len(pairs) == 3  # one regenerated turn with one rejected attempt, one with two
    by_id = {c.id: c for c in run_facts.accepted}
    for pair in pairs:
        conversation = by_id[pair["conversation_id"]]
        assert conversation.accepted
        prompt = pair["prompt"]
        assert prompt[0]["role"] == "system" and prompt[-1]["role"] == "user"
        assert prompt == training_messages(conversation, get_task(conversation.task))[: len(prompt)]
        turn = conversation.turns[len(prompt) - 1]
        assert turn.role == "assistant" and turn.verdict is not None and turn.verdict.accepted
        assert pair["chosen"] == [{"role": "assistant", "content": turn.content}]
        assert pair["rejected"] == [{"role": "assistant", "content": INVENTED}]
        assert pair["rejection"] in {"not_grounded", "unfaithful"}
        assert pair["chosen_score"] > pair["rejected_score"]
        assert pair["exchange"] == (len(prompt) - 1) // 2 + 1
    assert len({pair["id"] for pair in pairs}) == 3
    loaded = load_dataset("json", data_files=str(tmp_path / "dpo" / "train.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)
    assert all(is_conversational({key: row[key]}) for row in loaded for key in ("prompt", "chosen", "rejected"))


def test_split_is_by_document_deterministic_and_covers_every_conversation(run_facts: RunFacts, tmp_path: Path) -> None:
    options = ExportOptions(validation_ratio=0.3, seed=5)
    export_run(run_facts.path, "openai", tmp_path / "a", options)
    export_run(run_facts.path, "openai", tmp_path / "b", options)
    for name in ("train.jsonl", "validation.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    export_run(run_facts.path, "sharegpt", tmp_path / "c", options)
    ids = {
        split: [row["id"] for row in read_jsonl(tmp_path / "c" / f"{split}.jsonl")] for split in ("train", "validation")
    }
    docs = {c.id: c.doc_id for c in run_facts.accepted}
    assert sorted(ids["train"] + ids["validation"]) == sorted(c.id for c in exported(run_facts))
    assert not {docs[i] for i in ids["train"]} & {docs[i] for i in ids["validation"]}
    info = json.loads((tmp_path / "c" / "export_info.json").read_text())
    assert info["documents"]["validation"] == 2  # round(0.3 * 6 documents)


def test_split_documents_rules() -> None:
    docs = [f"doc{i}" for i in range(8)]
    split = split_documents(docs + docs[:3], 0.25, seed=0)
    assert sorted(split) == docs and list(split.values()).count("validation") == 2
    assert split == split_documents(list(reversed(docs)), 0.25, seed=0), "independent of order"
    assert any(split_documents(docs, 0.25, seed=s) != split for s in range(1, 5)), "the seed matters"
    assert list(split_documents(docs[:3], 0.01, seed=0).values()).count("validation") == 1
    assert set(split_documents(["only"], 0.5, seed=0).values()) == {"train"}
    assert set(split_documents(docs, 0.0, seed=0).values()) == {"train"}
    assert list(split_documents(docs[:2], 0.9, seed=0).values()).count("train") == 1, "never all in validation"


def test_near_duplicates_and_min_score_filters(run_facts: RunFacts, tmp_path: Path) -> None:
    kept = export_run(run_facts.path, "sharegpt", tmp_path / "dups", ExportOptions(drop_near_duplicates=False))
    ids = [row["id"] for row in read_jsonl(tmp_path / "dups" / "train.jsonl")]
    assert run_facts.near_duplicate_id in ids and kept.counts.near_duplicate == 0 and len(ids) == 8

    scores = sorted({round(conversation_score(c) or 0, 4) for c in exported(run_facts)})
    threshold = scores[len(scores) // 2]
    result = export_run(run_facts.path, "sharegpt", tmp_path / "min", ExportOptions(min_score=threshold))
    ids = [row["id"] for row in read_jsonl(tmp_path / "min" / "train.jsonl")]
    expected = [c.id for c in exported(run_facts) if (conversation_score(c) or 0) >= threshold]
    assert ids == expected and 0 < len(ids) < 7
    assert result.counts.below_min_score == 7 - len(ids)


def test_torn_last_line_is_exported_without_it_and_with_a_warning(run_facts: RunFacts, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    text = (run_facts.path / "accepted.jsonl").read_text()
    (run / "accepted.jsonl").write_text(text[: len(text) - 200])
    with pytest.warns(TornLineWarning):
        result = export_run(run, "openai", tmp_path / "out")
    assert result.rows["train"] == 6  # 8 accepted, the last one torn, one near-duplicate
    assert len(result.warnings) == 1 and "line 8" in result.warnings[0]


def test_empty_and_unusable_runs_are_clear_errors(run_facts: RunFacts, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunDirectoryError, match=r"neither accepted\.jsonl nor rejected\.jsonl"):
        export_run(empty, "openai", tmp_path / "o1")
    (empty / "accepted.jsonl").write_text("")
    (empty / "rejected.jsonl").write_text((run_facts.path / "rejected.jsonl").read_text())
    with pytest.raises(ExportError, match=r"holds no accepted conversations \(3 rejected ones"):
        export_run(empty, "openai", tmp_path / "o2")
    with pytest.raises(ExportError, match="No conversation passed the filters"):
        export_run(run_facts.path, "openai", tmp_path / "o3", ExportOptions(min_score=1.0))
    plain = tmp_path / "plain"
    plain.mkdir()
    no_regeneration = [c for c in exported(run_facts) if not any(t.rejected_attempts for t in c.turns)]
    (plain / "accepted.jsonl").write_text("".join(c.model_dump_json() + "\n" for c in no_regeneration))
    with pytest.raises(ExportError, match="No preference pairs"):
        export_run(plain, "preference", tmp_path / "o4")
    assert not (tmp_path / "o4" / "train.jsonl").exists()
    with pytest.raises(ExportError, match="Unknown export format 'alpaca'"):
        export_run(run_facts.path, "alpaca", tmp_path / "o5")  # type: ignore[arg-type]


def test_an_existing_export_is_replaced_only_with_overwrite(run_facts: RunFacts, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_run(run_facts.path, "openai", out, ExportOptions(validation_ratio=0.3))
    with pytest.raises(ExportError, match="--overwrite"):
        export_run(run_facts.path, "openai", out)
    export_run(run_facts.path, "openai", out, overwrite=True)
    assert not (out / "validation.jsonl").exists(), "a stale split of the earlier export must not survive"
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match=r"notes\.txt"):
        export_run(run_facts.path, "hf", out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def codi(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """Run the `codi` command line in this process (as the console script does) and capture its output."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exit:
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def test_cli_exports_and_reports_errors_with_exit_code_2(
    run_facts: RunFacts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = codi(capsys, "export", str(run_facts.path), "--format", "preference", "--out", str(tmp_path / "dpo"))
    assert ok.returncode == 0, ok.stderr
    assert "train" in ok.stdout and len(read_jsonl(tmp_path / "dpo" / "train.jsonl")) == 3
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = (run_facts.path / "accepted.jsonl").read_text().splitlines()
    (bad / "accepted.jsonl").write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    failed = codi(capsys, "export", str(bad), "--format", "openai", "--out", str(tmp_path / "x"))
    assert failed.returncode == 2
    assert "accepted.jsonl, line 2: not valid JSON" in failed.stderr.replace("\n", "")
    assert "Traceback" not in failed.stderr


def test_a_key_that_leaked_into_a_run_never_reaches_an_export(
    run_facts: RunFacts, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-EXPORTKEY-0123456789abcdef"
    run = tmp_path / "run"
    run.mkdir()
    leaky = [c.model_copy(deep=True) for c in run_facts.accepted]
    leaky[0].turns[1].content += f" (debug: {key})"
    (run / "accepted.jsonl").write_text("".join(c.model_dump_json() + "\n" for c in leaky))
    manifest = run_manifest(planned=len(leaky), settings={"api_key": key})  # a key where none belongs
    (run / "manifest.json").write_text(manifest.model_dump_json())
    monkeypatch.setenv("OPENAI_API_KEY", key)
    for format in ("openai", "hf"):
        result = codi(capsys, "export", str(run), "--format", format, "--out", str(tmp_path / format))
        assert result.returncode == 0, result.stderr
        assert key not in result.stdout + result.stderr
        for path in (tmp_path / format).rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path
    assert "sk-…cdef" in (tmp_path / "openai" / "train.jsonl").read_text()


PLUGIN_TASK = "tutoring_not_installed"
"""A task name no installed package provides: the run was made elsewhere, with a plug-in."""


def plugin_run(facts: RunFacts, path: Path) -> Path:
    """A copy of the run whose conversations were made with a plug-in task that is not installed here."""
    path.mkdir()
    records = [c.model_copy(update={"task": PLUGIN_TASK}) for c in facts.accepted]
    (path / "accepted.jsonl").write_text("".join(c.model_dump_json() + "\n" for c in records))
    manifest = run_manifest(planned=len(records)).model_copy(update={"task": PLUGIN_TASK})
    (path / "manifest.json").write_text(manifest.model_dump_json())
    return path


def test_a_run_of_a_task_not_installed_exports_with_the_task_the_caller_passes(
    run_facts: RunFacts, tmp_path: Path
) -> None:
    grounded = get_task("grounded_qa")
    tutoring = replace(
        grounded,
        name=PLUGIN_TASK,
        prompts=replace(grounded.prompts, training_system="Tutor from {document_title}.\n{passages}"),
    )
    run = plugin_run(run_facts, tmp_path / "run")
    export_run(run, "openai", tmp_path / "out", task=tutoring)
    lines = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert len(lines) == len(exported(run_facts))
    assert all(line["messages"][0]["content"].startswith("Tutor from ") for line in lines)
    assert all("<passage id=" in line["messages"][0]["content"] for line in lines)


def test_a_run_of_a_task_not_installed_names_the_missing_plug_in(
    run_facts: RunFacts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = plugin_run(run_facts, tmp_path / "run")
    with pytest.raises(TaskError, match=rf"task '{PLUGIN_TASK}', which is not installed.*Install the plug-in"):
        export_run(run, "openai", tmp_path / "out")
    assert not (tmp_path / "out" / "train.jsonl").exists()
    failed = codi(capsys, "export", str(run), "--format", "hf", "--out", str(tmp_path / "cli"))
    assert failed.returncode == 2 and PLUGIN_TASK in failed.stderr and "Traceback" not in failed.stderr


def test_training_messages_refuse_another_task_than_the_conversation_s(run_facts: RunFacts) -> None:
    conversation = run_facts.accepted[0]
    with pytest.raises(TaskError, match="was made with the task 'grounded_qa', not 'support'"):
        training_messages(conversation, get_task("support"))
