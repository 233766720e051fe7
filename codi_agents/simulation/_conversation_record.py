"""The record of one simulated conversation, from the graph's input and output, with every secret masked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codi_agents._ids import conversation_id
from codi_agents._record import Conversation
from codi_agents._security import redact
from codi_agents._version import __version__
from codi_agents.inputs._documents import DOCUMENT_NOTES
from codi_agents.simulation._state import SimulationInput


def conversation_record(
    given: SimulationInput,
    output: Mapping[str, Any],
    *,
    task: str,
    fingerprint: str,
    models: dict[str, str],
    user_mode: str,
    secrets: list[str],
    duration_seconds: float,
) -> Conversation:
    """The `Conversation` the graph made from `given`; its id names the task, input and `fingerprint`."""
    document, persona, flow, seed = given["document"], given["persona"], given["flow"], given["seed"]
    conversation = Conversation(
        id=conversation_id(task, document.id, persona, flow, seed, fingerprint),
        task=task,
        doc_id=document.id,
        doc_title=document.title,
        doc_notes={key: int(document.metadata[key]) for key in DOCUMENT_NOTES if key in document.metadata},
        persona=persona,
        flow=flow.name,
        link_phenomena={name: list(link.phenomena) for name, link in flow.links.items()},
        path=output.get("path", []),
        user_mode=user_mode,
        turns=output.get("turns", []),
        passages=output.get("passages_used", {}),
        accepted=output.get("outcome") == "accepted",
        rejection=output.get("rejection"),
        rejection_reason=output.get("rejection_reason"),
        failures=output.get("failures", []),
        models=models,
        usage=output.get("usage", {}),
        seed=seed,
        settings_fingerprint=fingerprint,
        codi_version=__version__,
        duration_seconds=round(duration_seconds, 4),
        flags=["truncated"] if output.get("truncated") else [],
    )
    return _without_secrets(conversation, secrets)


def _without_secrets(conversation: Conversation, secrets: list[str]) -> Conversation:
    """The record with every API key masked: a server's error message may quote the key it was sent."""
    text = conversation.model_dump_json()
    cleaned = redact(text, secrets)
    return conversation if cleaned == text else Conversation.model_validate_json(cleaned)
