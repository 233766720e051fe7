"""Supervised fine-tuning of a student with TRL's `SFTTrainer`: LoRA through PEFT by default, full
fine-tuning as an option, loss on the assistant's tokens only, resumable from the last checkpoint.

The assistant-only loss needs a chat template with `{% generation %}` markers; ChatML templates
(SmolLM2, Qwen) get an equivalent template with the markers (it renders the same text, checked).
The output folder holds `adapter/` (LoRA) or `model/` (full), `checkpoints/`, and `codi_train.json`
naming the base, which `codi eval-student OUT` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from codi_agents.errors import UserError
from codi_agents.student._backends import PACKAGED, TRAIN_INFO, resolve_source
from codi_agents.student._data import TrainingRows

CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n__DEFAULT_SYSTEM__<|im_end|>\\n' }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_PROBE = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Q"},
    {"role": "assistant", "content": "A"},
    {"role": "user", "content": "Q2"},
]


class TrainOptions(BaseModel):
    """How to fine-tune."""

    base: str = Field(default=PACKAGED, description="Base model: `smollm2`, a .gguf file or a model directory.")
    full: bool = Field(default=False, description="Full fine-tuning instead of LoRA.")
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = Field(default=-1, description="Stop after this many optimizer steps (-1: the epochs decide).")
    learning_rate: float | None = Field(default=None, gt=0, description="Default 2e-4 with LoRA, 2e-5 full.")
    batch_size: int = Field(default=1, ge=1)
    gradient_accumulation: int = Field(default=4, ge=1)
    max_length: int = Field(default=1024, ge=32, description="Tokens per conversation (longer ones are cut).")
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    save_steps: int = Field(default=50, ge=1, description="Checkpoint (and validation) every this many steps.")
    seed: int = 0


@dataclass
class TrainResult:
    """What a training run left."""

    out: Path
    steps: int
    train_loss: float | None
    eval_loss: float | None
    resumed_from: str | None


def training_chat_template(tokenizer: Any) -> str:
    """The tokenizer's template with `{% generation %}` markers; a clear error when none can be made."""
    template = tokenizer.chat_template or ""
    if "{% generation %}" in template.replace("{%-", "{%").replace("-%}", "%}"):
        return str(template)
    if "<|im_start|>" not in template:
        raise UserError(
            "The base model's chat template has no {% generation %} markers and is not ChatML, so the "
            "assistant-only loss cannot find the assistant's tokens. Give a base whose template has them."
        )
    default = ""
    for marker in ("<|im_start|>system\n", "<|im_start|>system\\n"):  # a newline, or jinja's escaped one
        if marker in template:
            default = template.split(marker, 1)[1].split("<|im_end|>", 1)[0]
    candidate = CHATML_TRAINING_TEMPLATE.replace("__DEFAULT_SYSTEM__", default)
    for probe in (_PROBE, _PROBE[1:]):
        original = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
        patched = tokenizer.apply_chat_template(
            probe, tokenize=False, add_generation_prompt=True, chat_template=candidate
        )
        if original != patched:
            raise UserError("The base model's ChatML template renders differently from codi's training template.")
    return candidate


def train_student(rows: TrainingRows, out: Path, options: TrainOptions) -> TrainResult:
    """Fine-tune `options.base` on `rows` into `out`; resumes from `out/checkpoints` when it has any."""
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    from codi_agents.student._hf import load_model, load_tokenizer

    source = resolve_source(options.base)
    if source.get("adapter"):
        raise UserError(f"The base {options.base} is a LoRA adapter; train from its base model instead.")
    tokenizer = load_tokenizer(source)
    tokenizer.chat_template = training_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(source)
    checkpoints = out / "checkpoints"
    has_validation = bool(rows.validation)
    config = SFTConfig(
        output_dir=str(checkpoints),
        assistant_only_loss=True,
        max_length=options.max_length,
        num_train_epochs=options.epochs,
        max_steps=options.max_steps,
        learning_rate=options.learning_rate or (2e-5 if options.full else 2e-4),
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation,
        logging_steps=1,
        save_steps=options.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if has_validation else "no",
        eval_steps=options.save_steps if has_validation else None,
        seed=options.seed,
        data_seed=options.seed,
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        packing=False,
        gradient_checkpointing=False,  # a small model fits; recomputing activations would double the CPU time
    )
    peft_config = None
    if not options.full:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=options.lora_r,
            lora_alpha=options.lora_alpha,
            lora_dropout=0.05,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list([{"messages": row["messages"]} for row in rows.train]),
        eval_dataset=Dataset.from_list([{"messages": row["messages"]} for row in rows.validation])
        if has_validation
        else None,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    if trainer.train_dataset is None or len(trainer.train_dataset) == 0:  # type: ignore[arg-type]
        raise UserError(
            f"No training conversation has an assistant token within the first {options.max_length} tokens "
            "(long system prompts with passages); raise --max-length."
        )
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None  # type: ignore[no-untyped-call]
    output = trainer.train(resume_from_checkpoint=last)
    eval_loss = trainer.evaluate()["eval_loss"] if has_validation else None
    target = out / ("model" if options.full else "adapter")
    trained: Any = trainer.model
    trained.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    info: dict[str, Any] = {
        "base": source,
        "adapter": None if options.full else "adapter",
        "model": "model" if options.full else None,
        "options": options.model_dump(),
        "data": {
            "source": rows.source,
            "train_rows": len(rows.train),
            "validation_rows": len(rows.validation),
            "documents": rows.documents,
            "dropped": rows.dropped,
        },
        "steps": int(output.global_step),
        "train_loss": float(output.training_loss),
        "eval_loss": eval_loss,
    }
    (out / TRAIN_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return TrainResult(out, int(output.global_step), float(output.training_loss), eval_loss, last)
