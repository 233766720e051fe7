"""Stable ids: the same inputs give the same id as every earlier codi version, so runs resume and dedupe."""

from __future__ import annotations

from codi_agents import load_flow, load_persona
from codi_agents._ids import conversation_id, stable_hash


def test_ids_are_byte_for_byte_those_of_earlier_versions() -> None:
    """Pinned values computed with the code before `_ids.py` existed (commit d3636ca)."""
    persona, flow = load_persona("curious_student"), load_flow("grounded_qa")
    assert conversation_id("grounded_qa", "doc-1", persona, flow, 7, "abc123") == "d6a50d17b7024d1ca266"
    assert stable_hash({"a": [1, 2.5, "x"]}) == "0b7427b3106796e0"
    assert stable_hash([3, "d", 1], 8) == "212bb5ff"


def test_every_input_of_an_id_changes_it() -> None:
    persona, flow = load_persona("curious_student"), load_flow("grounded_qa")
    base = conversation_id("grounded_qa", "doc-1", persona, flow, 7, "abc123")
    variants = {
        conversation_id("support", "doc-1", persona, flow, 7, "abc123"),
        conversation_id("grounded_qa", "doc-2", persona, flow, 7, "abc123"),
        conversation_id("grounded_qa", "doc-1", load_persona("retiree"), flow, 7, "abc123"),
        conversation_id("grounded_qa", "doc-1", persona, load_flow("factoid_short"), 7, "abc123"),
        conversation_id("grounded_qa", "doc-1", persona, flow, 8, "abc123"),
        conversation_id("grounded_qa", "doc-1", persona, flow, 7, "abc124"),
    }
    assert base not in variants and len(variants) == 6
    assert stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})  # independent of dict order
