"""The public `simulate` API: inputs of every kind, and bad input with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from codi_agents import asimulate, load_persona, simulate
from codi_agents.errors import DocumentError, PersonaError, TaskError
from codi_agents.testing import HashingEmbeddingFunction, scripted_models


def test_simulate_accepts_a_path_a_persona_name_and_a_flow_name(tmp_path: Path) -> None:
    doc = tmp_path / "plates.md"
    doc.write_text(
        "# Plates\n\nYou must surrender your plates to the DMV before you cancel your insurance. "
        "Keep the receipt the DMV gives you. It proves that you returned them.\n"
    )
    conversation = simulate(
        doc,
        "child",
        flow="factoid_short",
        seed=5,
        models=scripted_models(),
        embedding_function=HashingEmbeddingFunction(),
    )
    assert conversation.accepted
    assert conversation.doc_id == "plates" and conversation.doc_title == "Plates"
    assert conversation.persona == load_persona("child")
    assert conversation.flow == "factoid_short" and conversation.seed == 5
    assert conversation.codi_version and conversation.settings_fingerprint


def test_simulate_inside_a_running_event_loop_works() -> None:
    import asyncio

    async def inside() -> bool:
        conversation = simulate(
            "The office opens at 9 am. It closes at 5 pm on weekdays.",
            models=scripted_models(),
            embedding_function=HashingEmbeddingFunction(),
        )
        return conversation.accepted

    assert asyncio.run(inside())


def test_asimulate_with_raw_text() -> None:
    import asyncio

    conversation = asyncio.run(
        asimulate(
            "Cats sleep a lot. Dogs bark at strangers.",
            "curious_student",
            models=scripted_models(),
            embedding_function=HashingEmbeddingFunction(),
        )
    )
    assert conversation.doc_id.startswith("text-")


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p / "missing.md", DocumentError, "not found"),
        (lambda p: ((p / "empty.txt").write_text("") and None) or p / "empty.txt", DocumentError, "empty"),
        (
            lambda p: ((p / "image.txt").write_bytes(b"\x00\x01\x02binary") and None) or p / "image.txt",
            DocumentError,
            "binary",
        ),
    ],
)
def test_bad_documents_fail_before_any_model_is_called(tmp_path: Path, make, error, message: str) -> None:  # type: ignore[no-untyped-def]
    models = scripted_models()
    with pytest.raises(error, match=message):
        simulate(make(tmp_path), models=models, embedding_function=HashingEmbeddingFunction())
    assert all(not model.calls for model in models.values())


def test_unknown_persona_and_task_are_clear_errors() -> None:
    with pytest.raises(PersonaError, match="Unknown persona 'pirate'"):
        simulate(
            "Some text about plates.", "pirate", models=scripted_models(), embedding_function=HashingEmbeddingFunction()
        )
    with pytest.raises(TaskError, match="Unknown task 'poetry'"):
        simulate("Some text.", task="poetry", models=scripted_models(), embedding_function=HashingEmbeddingFunction())


def test_empty_raw_text_is_refused() -> None:
    with pytest.raises(DocumentError, match="empty"):
        simulate("   ", models=scripted_models(), embedding_function=HashingEmbeddingFunction())
