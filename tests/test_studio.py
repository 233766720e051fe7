"""The LangGraph Studio graph (`langgraph.json`): JSON in, a real simulation inside, the record out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from codi_agents import Conversation
from codi_agents.testing import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "examples" / "docs" / "dmv_surrender_plates.md"


def test_langgraph_json_points_at_a_compiled_graph() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    (target,) = config["graphs"].values()
    module_path, attribute = target.split(":")
    assert (ROOT / module_path).is_file()
    from codi_agents import studio

    graph = getattr(studio, attribute)
    assert set(graph.get_input_jsonschema()["properties"]) == {"document", "persona", "flow", "seed", "task"}
    assert set(graph.get_output_jsonschema()["properties"]) == {"accepted", "conversation"}


def test_a_studio_run_simulates_against_the_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from codi_agents.studio import graph

    with FakeOpenAIServer() as server:
        monkeypatch.setenv("CODI_BASE_URL", server.base_url)
        monkeypatch.setenv("CODI_MODEL", server.model)
        monkeypatch.setenv("CODI_API_KEY", "fake-key-for-the-fake-server")
        output = asyncio.run(
            graph.ainvoke({"document": str(DOC), "persona": "curious_student", "flow": "factoid_short", "seed": 3})
        )
        assert server.stats()["requests"] > 0  # the real graph ran, against the server the environment names
    conversation = Conversation.model_validate(output["conversation"])
    assert output["accepted"] == conversation.accepted
    assert conversation.doc_id == DOC.stem and conversation.persona.name == "curious_student"
    assert conversation.flow == "factoid_short" and len(conversation.path) >= 2
    assert conversation.models["assistant"] == server.model
