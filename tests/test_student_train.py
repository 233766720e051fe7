"""`codi train`: the training data (inputs, split by document, bad input) and, with the `train` extra, a
tiny LoRA run on the embedded model's GGUF that changes its output and resumes from its checkpoint."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from codi_agents.cli import main
from codi_agents.errors import UserError
from codi_agents.student._data import document_key, read_training_rows

TRAIN_ROWS = Path(__file__).parent / "data" / "student_train.jsonl"
HAS_TRAIN_EXTRA = all(importlib.util.find_spec(name) for name in ("torch", "transformers", "trl", "peft", "gguf"))
needs_train_extra = pytest.mark.skipif(
    not HAS_TRAIN_EXTRA, reason="needs the train extra: pip install torch==2.13.0 'codi-agents[train]'"
)


def test_rows_are_split_by_document_never_across() -> None:
    rows = read_training_rows(TRAIN_ROWS, validation_ratio=0.5, seed=0)
    train_docs = {document_key(row) for row in rows.train}
    validation_docs = {document_key(row) for row in rows.validation}
    assert train_docs and validation_docs and not train_docs & validation_docs
    assert len(rows.train) + len(rows.validation) == 3  # the two library rows stay together
    assert len(rows.documents["train"]) + len(rows.documents["validation"]) == 2


def test_rows_without_an_assistant_turn_or_malformed_are_dropped(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    good = TRAIN_ROWS.read_text().splitlines()[0]
    no_answer = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}
    source.write_text(f"{good}\nnot json\n{json.dumps(no_answer)}\n{json.dumps({'text': 'x'})}\n")
    rows = read_training_rows(source, validation_ratio=0.0)
    assert len(rows.train) == 1 and rows.dropped == 3


def test_nothing_to_train_on_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(UserError, match="no conversation to train on"):
        read_training_rows(empty)
    with pytest.raises(UserError, match="does not exist"):
        read_training_rows(tmp_path / "missing")


def test_cli_train_rejects_a_directory_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tmp_path / "not_a_run"), "--out", str(tmp_path / "student")])
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


@needs_train_extra
def test_training_template_marks_the_assistant_tokens_and_renders_like_the_original() -> None:
    from codi_agents.student._backends import resolve_source
    from codi_agents.student._hf import load_tokenizer
    from codi_agents.student._train import training_chat_template

    tokenizer = load_tokenizer(resolve_source("smollm2"))
    template = training_chat_template(tokenizer)
    messages = json.loads(TRAIN_ROWS.read_text().splitlines()[0])["messages"]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == tokenizer.apply_chat_template(
        messages, tokenize=False, chat_template=template
    )
    encoded = tokenizer.apply_chat_template(
        messages, chat_template=template, return_assistant_tokens_mask=True, return_dict=True
    )
    trained = tokenizer.decode([t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m])
    assert trained == "Films are lent for one week.<|im_end|>Books are lent for three weeks.<|im_end|>"


@needs_train_extra
def test_a_few_lora_steps_change_the_output_and_training_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    from codi_agents import Settings
    from codi_agents.student import TrainOptions, open_student, train

    out = tmp_path / "student"
    options = TrainOptions(max_steps=2, gradient_accumulation=1, max_length=256, save_steps=1, learning_rate=5e-2)
    first = train(TRAIN_ROWS, out, options, validation_ratio=0.0)
    assert first.steps == 2 and first.resumed_from is None
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    prompt = json.loads(TRAIN_ROWS.read_text().splitlines()[1])["messages"][:2]
    replies = []
    for model in ("smollm2", str(out)):
        student = open_student(model, Settings(), max_new_tokens=8)
        replies.append(student.reply(prompt))
        student.close()
    assert replies[0] != replies[1]
    again = train(TRAIN_ROWS, out, options.model_copy(update={"max_steps": 3}), validation_ratio=0.0)
    assert again.resumed_from is not None and again.resumed_from.endswith("checkpoint-2")
    assert again.steps == 3
    info = json.loads((out / "codi_train.json").read_text())
    assert info["steps"] == 3 and info["base"]["gguf_file"].endswith(".gguf")


def test_a_run_directory_is_exported_first_with_its_system_prompt_and_passages(tmp_path: Path) -> None:
    from codi_agents import run
    from codi_agents.testing import HashingEmbeddingFunction, scripted_models

    corpus = Path(__file__).parent / "data" / "doc2dial_docs.jsonl"
    run(corpus, tmp_path / "run", n=3, models=scripted_models(), embedding_function=HashingEmbeddingFunction())
    rows = read_training_rows(tmp_path / "run", validation_ratio=0.5)
    every = rows.train + rows.validation
    assert every and rows.train and rows.validation
    assert all(row["messages"][0]["role"] == "system" and "<passage id=" in row["messages"][0]["content"] for row in every)
    assert not {document_key(r) for r in rows.train} & {document_key(r) for r in rows.validation}


def test_an_unknown_model_name_is_a_clear_error() -> None:
    from codi_agents import Settings
    from codi_agents.student import open_student

    with pytest.raises(UserError, match="neither `embedded`"):
        open_student("no-such-model", Settings())


@needs_train_extra
def test_a_folder_without_a_model_cannot_be_loaded_and_says_so(tmp_path: Path) -> None:
    from codi_agents import Settings
    from codi_agents.errors import LocalModelError
    from codi_agents.student import open_student

    (tmp_path / "empty").mkdir()
    with pytest.raises(LocalModelError, match="Cannot load"):
        open_student(str(tmp_path / "empty"), Settings())
