"""A scripted chat model: answers from a script, supports `bind_tools` and `with_structured_output`.

A script is a list of replies consumed in order, or a function of the prompt. A reply can be:
- a `str`: the text of the reply (with tools bound: a tool call if it is a JSON object, otherwise
  an unparseable tool call that keeps the text as its raw arguments);
- a `dict` or a pydantic model: the arguments of a tool call (with tools bound) or JSON text;
- an `AIMessage`, used as is;
- an exception instance, raised (to play a server error or a timeout);
- a callable taking the messages, returning any of the above.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Reply = str | dict[str, Any] | BaseModel | AIMessage | BaseException | Callable[[list[BaseMessage]], Any]


class ScriptExhaustedError(AssertionError):
    """The scripted model was called more often than its script has replies."""


class ScriptedChatModel(BaseChatModel):
    """A chat model that replies from a script; records every prompt it was given in `calls`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any] | Callable[[list[BaseMessage]], Any] = Field(default_factory=list)
    """Replies in order, or a function from the prompt to a reply."""
    model_name: str = "scripted"
    """The name the model reports."""
    cycle: bool = False
    """Start the script again when it runs out, instead of failing."""
    delay_seconds: float = 0.0
    """Seconds each reply takes, to play a slow server."""

    _position: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "codi-scripted"

    def __getstate__(self) -> dict[Any, Any]:
        """Picklable (a run with Ray workers sends each worker a copy): the lock is made anew, not copied."""
        state = dict(super().__getstate__())
        state["__pydantic_private__"] = {
            key: value for key, value in (state.get("__pydantic_private__") or {}).items() if key != "_lock"
        }
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The prompts this model received, in order."""
        return self._calls

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tool schemas: replies that are objects become calls of the first tool."""
        schemas = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=schemas, tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._reply(messages, kwargs.get("tools"))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return self._reply(messages, kwargs.get("tools"))

    def _next_reply(self, messages: list[BaseMessage]) -> Any:
        with self._lock:
            self._calls.append(messages)
            if callable(self.script):
                return self.script(messages)
            if self._position >= len(self.script):
                if not self.cycle or not self.script:
                    raise ScriptExhaustedError(
                        f"{self.model_name}: script of {len(self.script)} replies ran out at call {len(self._calls)}"
                    )
                self._position = 0
            reply = self.script[self._position]
            self._position += 1
            return reply

    def _reply(self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None) -> ChatResult:
        reply = self._next_reply(messages)
        while callable(reply) and not isinstance(reply, type | BaseModel):
            reply = reply(messages)
        if isinstance(reply, BaseException):
            raise reply
        message = reply if isinstance(reply, AIMessage) else _as_message(reply, tools)
        if message.usage_metadata is None:
            prompt_chars = sum(len(str(m.content)) for m in messages)
            output_chars = len(str(message.content)) + sum(len(json.dumps(c["args"])) for c in message.tool_calls)
            message.usage_metadata = {
                "input_tokens": prompt_chars // 4 + 1,
                "output_tokens": output_chars // 4 + 1,
                "total_tokens": (prompt_chars + output_chars) // 4 + 2,
            }
        return ChatResult(generations=[ChatGeneration(message=message)])


def _as_message(reply: Any, tools: list[dict[str, Any]] | None) -> AIMessage:
    if isinstance(reply, BaseModel):
        reply = reply.model_dump(mode="json")
    if not tools:
        return AIMessage(content=reply if isinstance(reply, str) else json.dumps(reply))
    tool_name = tools[0]["function"]["name"]
    if isinstance(reply, str):
        try:
            arguments = json.loads(reply)
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            return AIMessage(
                content="",
                invalid_tool_calls=[
                    {"name": tool_name, "args": reply, "id": "call_0", "error": "not JSON", "type": "invalid_tool_call"}
                ],
            )
        reply = arguments
    return AIMessage(content="", tool_calls=[{"name": tool_name, "args": reply, "id": "call_0", "type": "tool_call"}])
