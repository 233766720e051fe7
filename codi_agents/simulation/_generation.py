"""Generating one turn's text from a role's model, asked again (bounded) when the output is unusable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codi_agents._record import Failure, Usage
from codi_agents.llm._calls import RoleModel
from codi_agents.simulation._context import SimulationContext
from codi_agents.simulation._outputs import UserMessage


async def generate_text(
    model: RoleModel,
    messages: list[Any],
    clean: Callable[[str], str],
    ctx: SimulationContext,
    stage: str,
    step: int,
    *,
    structured: bool = False,
) -> tuple[str | None, Usage, list[Failure]]:
    """Generate a turn's text, asked again (bounded) when the cleaned output is empty or does not parse.

    `structured` asks for a `UserMessage` through structured output, which a server can enforce
    with a grammar: it keeps small models to one short message instead of a ramble.
    """
    usage = Usage()
    failures: list[Failure] = []
    for _ in range(ctx.settings.max_parse_retries + 1):
        if structured:
            parsed = await model.structured(UserMessage, messages, parse_retries=0)
            usage = usage + parsed.usage
            raw = "\n".join(parsed.raw_outputs)
            text = clean(parsed.parsed.message) if parsed.parsed else ""
        else:
            result = await model.complete(messages)
            usage = usage + result.usage
            raw = result.text
            text = clean(result.text)
        if text:
            return text, usage, failures
        failures.append(Failure(stage=stage, error="empty or unparseable output", raw_output=raw, turn=step))
    return None, usage, failures
