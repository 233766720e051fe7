"""Fine-tune a truncated all-MiniLM-L6-v2 as a one-logit classifier; seeded and resumable from checkpoints.

    python -m training.checkers.train faith-final        # or any run name in RUNS (training/checkers/runs.py)
    python -m training.checkers.train faith-final --finish-early   # use the last checkpoint as the final model
    python -m training.checkers.train faith-final --threads 1      # when two runs share the cores

A rerun of the same command picks up from `training/out/<run>/checkpoint.pt`. The batch order of every epoch
is a function of the seed (or `batch_seed`) and the epoch, so a resumed run sees the same batches as an
uninterrupted one.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from training.checkers.common import OUT, base_model_dir
from training.checkers.runs import RUNS, RunConfig, build_examples, encode_examples


def build_model(layers: int) -> Any:
    """MiniLM with only its first `layers` transformer layers and a fresh one-logit head."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(base_model_dir()), num_labels=1)
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    return model


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar length (sorted within blocks of 50 batches), fixed by seed and epoch."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    block = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), block):
        part = sorted(order[start : start + block], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(encoded: list[tuple[list[int], list[int]]], index: list[int]) -> dict[str, torch.Tensor]:
    """Right-padded tensors for one batch."""
    width = max(len(encoded[i][0]) for i in index)
    ids = torch.zeros(len(index), width, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, i in enumerate(index):
        tokens, type_ids = encoded[i]
        ids[row, : len(tokens)] = torch.tensor(tokens)
        types[row, : len(tokens)] = torch.tensor(type_ids)
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, so a kill mid-write leaves the previous checkpoint intact."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def restore(checkpoint: Path, model: Any, optimizer: Any, scheduler: Any) -> int:
    """Load the last checkpoint, if any, into the live objects; returns the step to continue from."""
    if not checkpoint.exists():
        return 0
    state = torch.load(checkpoint, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    print(f"resumed at step {state['step']}", flush=True)
    return int(state["step"])


def save_checkpoint(checkpoint: Path, model: Any, optimizer: Any, scheduler: Any, step: int) -> None:
    """Everything a rerun needs to continue exactly where this one stopped."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "step": step,
    }
    save_atomic(state, checkpoint)


def build_training(config: RunConfig, total: int) -> tuple[Any, Any, Any]:
    """Model (base or `init_from`), AdamW, and linear warm-up (6 %) then linear decay to zero at `total`."""
    model = build_model(config.layers)
    if config.init_from:
        model.load_state_dict(torch.load(OUT / config.init_from / "final.pt", weights_only=True))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    return model, optimizer, scheduler


def train(config: RunConfig) -> Path:
    """Train (or resume) one run; returns the path of its final weights."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = OUT / config.name
    out.mkdir(parents=True, exist_ok=True)
    final = out / "final.pt"
    if final.exists():
        print(f"{final} exists; nothing to do")
        return final
    splits = build_examples(config)
    examples = splits["train"]
    encoded = encode_examples(config, examples)
    labels = torch.tensor([e.label for e in examples], dtype=torch.float)
    weights = torch.tensor([e.weight for e in examples], dtype=torch.float)
    lengths = [len(ids) for ids, _ in encoded]
    order_seed = config.batch_seed or config.seed
    per_epoch = len(epoch_batches(lengths, config.batch_size, order_seed, 0))
    total = min(per_epoch * config.epochs, config.max_steps or 10**9)
    model, optimizer, scheduler = build_training(config, total)
    if config.batch_seed:  # the head was initialised from `seed`; dropout follows the batch seed
        torch.manual_seed(config.batch_seed)
    checkpoint = out / "checkpoint.pt"
    step = restore(checkpoint, model, optimizer, scheduler)
    (out / "config.json").write_text(
        json.dumps({**config.__dict__, "train_examples": len(examples), "steps": total}, indent=1)
    )
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    log = (out / "log.txt").open("a")
    started, running = time.time(), 0.0
    batches: dict[int, list[list[int]]] = {}
    while step < total:
        epoch, offset = divmod(step, per_epoch)
        if epoch not in batches:
            batches = {epoch: epoch_batches(lengths, config.batch_size, order_seed, epoch)}
        index = batches[epoch][offset]
        logits = model(**collate(encoded, index)).logits.squeeze(-1)
        loss = (loss_fn(logits, labels[index]) * weights[index]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        running = 0.98 * running + 0.02 * loss.item() if running else loss.item()
        if step % 20 == 0:
            rate = (time.time() - started) / 20
            started = time.time()
            print(f"step {step}/{total} loss {running:.4f} {rate:.2f}s/step", file=log, flush=True)
        if step % config.checkpoint_every == 0 or step == total:
            save_checkpoint(checkpoint, model, optimizer, scheduler, step)
    save_atomic(model.state_dict(), final)
    print(f"done: {final}", file=log, flush=True)
    return final


def average_weights(config: RunConfig) -> Path:
    """`final.pt` as the mean of the `final.pt` weights of `config.soup` (runs fine-tuned from the same base)."""
    states = [torch.load(OUT / run / "final.pt", weights_only=True) for run in config.soup]
    mean = {key: sum(state[key].float() for state in states) / len(states) for key in states[0]}
    out = OUT / config.name
    out.mkdir(parents=True, exist_ok=True)
    save_atomic({key: value.to(states[0][key].dtype) for key, value in mean.items()}, out / "final.pt")
    (out / "config.json").write_text(json.dumps(config.__dict__, indent=1))
    print(f"{config.name}: mean of {', '.join(config.soup)}")
    return out / "final.pt"


def finish_early(config: RunConfig) -> Path:
    """Promote the last checkpoint's weights to `final.pt` (a run stopped before its last step)."""
    out = OUT / config.name
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    save_atomic(state["model"], out / "final.pt")
    (out / "finished_early.txt").write_text(f"stopped at step {state['step']}\n")
    print(f"{config.name}: final.pt from the checkpoint of step {state['step']}")
    return out / "final.pt"


if __name__ == "__main__":
    run = RUNS[sys.argv[1]]
    if "--threads" in sys.argv:  # two runs sharing the 2 cores: --threads 1 each (the numbers do not depend on it)
        run = replace(run, threads=int(sys.argv[sys.argv.index("--threads") + 1]))
    if "--finish-early" in sys.argv:
        finish_early(run)
    elif run.soup:
        average_weights(run)
    else:
        train(run)
