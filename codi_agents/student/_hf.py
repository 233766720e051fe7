"""Local Hugging Face models with transformers: loading (a directory, a GGUF file, a LoRA adapter)
and greedy generation. Needs the `train` extra (torch, transformers, peft, gguf)."""

from __future__ import annotations

import os
from typing import Any

from codi_agents.errors import LocalModelError, UserError

MAX_INPUT_TOKENS = 2048
"""Longest prompt given to a local model; older history is dropped first to stay under it."""


def require_training_packages() -> None:
    """Fail with the install command when torch/transformers are missing."""
    import importlib.util

    missing = [name for name in ("torch", "transformers", "peft") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"Local Hugging Face models need {', '.join(missing)}: pip install torch==2.13.0, "
            "then pip install 'codi-agents[train]' (installing torch first keeps pip from pulling a CUDA build)."
        )


def load_tokenizer(source: dict[str, Any]) -> Any:
    """The tokenizer (and chat template) of a model source; a GGUF file carries its own."""
    require_training_packages()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source["path"], gguf_file=source.get("gguf_file"))
    except (OSError, ValueError) as exc:
        raise LocalModelError(f"Cannot load the tokenizer of {source['path']}: {exc}") from exc


def load_model(source: dict[str, Any], *, trainable_adapter: bool = False) -> Any:
    """The causal LM of a model source, with its LoRA adapter applied when it names one."""
    require_training_packages()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM

    model: Any
    try:
        model = AutoModelForCausalLM.from_pretrained(source["path"], gguf_file=source.get("gguf_file"))
    except (OSError, ValueError) as exc:
        raise LocalModelError(
            f"Cannot load the model {source['path']} ({source.get('gguf_file') or 'directory'}): {exc}. "
            "Give a transformers model directory, a .gguf file, or `smollm2`."
        ) from exc
    if source.get("gguf_file"):
        _forget_gguf_quantization(model)
    if source.get("adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source["adapter"], is_trainable=trainable_adapter)
    return model


def _forget_gguf_quantization(model: Any) -> None:
    """transformers dequantizes a GGUF file to float32 but keeps its quantizer's marks, which make the
    Trainer refuse to train and `save_pretrained` write a GGUF config; the weights are plain tensors."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


class HuggingFaceStudent:
    """A local model run with transformers: greedy decoding, at most `max_new_tokens` per reply."""

    def __init__(self, source: dict[str, Any], *, max_new_tokens: int) -> None:
        self.source = source
        self.max_new_tokens = max_new_tokens
        self.tokenizer = load_tokenizer(source)
        self.model = load_model(source)
        self.model.eval()

    def describe(self) -> dict[str, Any]:
        """The model's files and the decoding."""
        return {"kind": "huggingface", **self.source, "decoding": "greedy", "max_new_tokens": self.max_new_tokens}

    def reply(self, messages: list[dict[str, str]]) -> str:
        """Greedy reply; the oldest history turns are dropped while the prompt is too long."""
        import torch

        messages = list(messages)
        while True:
            inputs = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            if inputs["input_ids"].shape[1] <= MAX_INPUT_TOKENS or len(messages) <= 2:
                break
            del messages[1:3]  # the oldest exchange after the system prompt
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        new_tokens = output[0][inputs["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()

    def close(self) -> None:
        """Drop the model."""
        self.model = None
