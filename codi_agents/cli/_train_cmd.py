"""`codi train`: fine-tune a small student on a run's accepted conversations (TRL SFT, LoRA by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codi_agents.student import PACKAGED, TrainOptions, train


def train_command(
    source: Annotated[
        Path, typer.Argument(help="A `codi run` directory, a `codi export --format openai` folder, or a JSONL file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder; rerunning with it resumes training.")],
    base: Annotated[
        str, typer.Option("--base", help="`smollm2` (the embedded model's GGUF), a .gguf file or a model directory.")
    ] = PACKAGED,
    full: Annotated[bool, typer.Option("--full", help="Full fine-tuning instead of LoRA.")] = False,
    epochs: Annotated[float, typer.Option("--epochs", min=0.01, help="Passes over the training rows.")] = 1.0,
    max_steps: Annotated[
        int, typer.Option("--max-steps", help="Stop after N optimizer steps (-1: the epochs decide).")
    ] = -1,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", help="Default 2e-4 (LoRA), 2e-5 (full).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 1,
    gradient_accumulation: Annotated[int, typer.Option("--gradient-accumulation", min=1)] = 4,
    max_length: Annotated[int, typer.Option("--max-length", min=32, help="Tokens per conversation.")] = 1024,
    validation_ratio: Annotated[
        float, typer.Option("--validation-ratio", min=0.0, max=0.9, help="Share of documents held out.")
    ] = 0.1,
    save_steps: Annotated[int, typer.Option("--save-steps", min=1, help="Checkpoint every N steps.")] = 50,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Train on the first N conversations.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Supervised fine-tuning with the loss on the assistant's tokens only, the exported system prompt (with
    its passages) kept, a validation split by document; resumes from the last checkpoint in --out."""
    console = Console()
    options = TrainOptions(
        base=base,
        full=full,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
        max_length=max_length,
        save_steps=save_steps,
        seed=seed,
    )
    result = train(source, out, options, validation_ratio=validation_ratio, limit=limit)
    if result.resumed_from:
        console.print(f"resumed from {result.resumed_from}")
    losses = f"train loss {result.train_loss:.3f}" if result.train_loss is not None else ""
    if result.eval_loss is not None:
        losses += f", validation loss {result.eval_loss:.3f}"
    console.print(f"trained {result.steps} steps ({losses}); the student is in {result.out}")
    console.print(f"score it: codi eval-student {result.out} --on CONVERSATIONS.jsonl --out results.jsonl")
