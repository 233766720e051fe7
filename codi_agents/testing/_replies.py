"""What the fake OpenAI-compatible server answers: made-up but useful replies, with no model.

A request with tools gets arguments generated from the tool's JSON schema (so structured output
parses); a prompt that quotes passages gets a grounded answer; any other prompt gets a user's question.
"""

from __future__ import annotations

import re
from typing import Any

PASSAGE = re.compile(r"<passage id=\"[^\"]+\"[^>]*>\n")
"""How codi's prompts quote a passage: a system prompt with one is an assistant's."""


def reply_text(messages: list[dict[str, Any]]) -> str:
    """A grounded answer when the prompt quotes passages, else a user's question about the document shown."""
    from langchain_core.messages import convert_to_messages

    from codi_agents.testing._scripted import scripted_assistant, scripted_user

    converted = convert_to_messages(
        [{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in messages]
    )
    system = str(converted[0].content) if converted else ""
    return scripted_assistant(converted) if PASSAGE.search(system) else scripted_user(converted)


def example_from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A value valid against a JSON schema (the subset pydantic and tool definitions use)."""
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example_from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"] or schema[key]
            return example_from_schema(options[0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example_from_schema(sub, defs) for name, sub in properties.items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        return [example_from_schema(schema.get("items", {"type": "string"}), defs) for _ in range(count)]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", max(low, 1)))
        value = (low + high) / 2
        return int(value) if kind == "integer" else float(value)
    if kind == "null":
        return None
    text = "An example value."
    return text.ljust(int(schema.get("minLength", 0)), ".")[: schema.get("maxLength", len(text) + 10**6)]


def chosen_tool(tools: list[dict[str, Any]], choice: Any) -> dict[str, Any]:
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        for tool in tools:
            if tool.get("function", {}).get("name") == wanted:
                return tool
    return tools[0]
