"""Export a trained run to ONNX and quantise it to int8 (dynamic, weights only).

    python -m training.checkers.export faith-final [--checkpoint]

Writes `training/out/<run>/model.onnx` and `model.int8.onnx`; `evaluate.py --ship` copies the int8 file into
`codi_agents/checkers/models/`. `--checkpoint` exports the last checkpoint of an unfinished run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from training.checkers.common import OUT
from training.checkers.train import build_model

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def load_trained(run: str, checkpoint: bool = False) -> Any:
    """The run's model in eval mode, from `final.pt` (or the last checkpoint)."""
    out = OUT / run
    config = json.loads((out / "config.json").read_text())
    model = build_model(int(config["layers"]))
    if checkpoint:
        state = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    else:
        state = torch.load(out / "final.pt", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


def export(run: str, checkpoint: bool = False) -> Path:
    """ONNX (opset 17, dynamic batch and length) then int8; returns the int8 path."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.set_num_threads(2)
    model = load_trained(run, checkpoint)
    out = OUT / run
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102, 2009, 2003, 102]])
    sample = (ids, torch.ones_like(ids), torch.tensor([[0] * 6 + [1] * 3]))
    fp32 = out / "model.onnx"
    torch.onnx.export(
        model,
        sample,
        str(fp32),
        input_names=INPUTS,
        output_names=["logits"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*INPUTS, "logits"]} | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    int8 = out / "model.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    print(f"{int8}: {int8.stat().st_size / 1e6:.1f} MB")
    return int8


if __name__ == "__main__":
    export(sys.argv[1], checkpoint="--checkpoint" in sys.argv)
