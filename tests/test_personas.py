"""Personas: shipped files load and differ; broken files name the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from codi_agents import Persona, load_persona
from codi_agents.errors import PersonaError
from codi_agents.inputs._personas import available_personas


def test_at_least_eight_distinct_personas_ship_and_load() -> None:
    names = available_personas()
    assert len(names) >= 8
    personas = [load_persona(name) for name in names]
    assert len({p.description for p in personas}) == len(personas)
    assert len({p.style for p in personas}) == len(personas)
    assert {"curious_student", "busy_professional", "sceptical_expert", "child", "caregiver"} <= set(names)


def test_persona_by_name_path_or_object_is_the_same(tmp_path: Path) -> None:
    by_name = load_persona("child")
    assert load_persona(by_name) is by_name
    copy = tmp_path / "kid.toml"
    copy.write_text((Path(available_personas()["child"])).read_text())
    by_path = load_persona(copy)
    assert by_path.name == "kid"
    assert by_path.description == by_name.description
    assert "Goals:" in by_name.render()


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ('description = "x"\ngoals = ["a"]\nexpertise = "e"\n', "style", "this field is required"),
        ('description = "x"\ngoals = []\nexpertise = "e"\nstyle = "s"\n', "goals", "at least 1 item"),
        ('description = "x"\ngoals = ["a"]\nexpertise = "e"\nstyle = "s"\nmood = "grumpy"\n', "mood", "unknown field"),
        ('description = "x"\ngoals = "not a list"\nexpertise = "e"\nstyle = "s"\n', "goals", "valid list"),
        ("description = \n", "", "not valid TOML"),
    ],
)
def test_broken_persona_files_name_the_file_and_field(tmp_path: Path, text: str, field: str, problem: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(PersonaError) as caught:
        load_persona(path)
    message = str(caught.value)
    assert str(path) in message
    assert f": {field}:" in message or not field
    assert problem in message


def test_unknown_persona_name_lists_what_exists() -> None:
    with pytest.raises(PersonaError, match=r"Unknown persona 'pirate'\. Available: .*curious_student"):
        load_persona("pirate")


def test_persona_is_immutable_and_validated() -> None:
    with pytest.raises(ValueError, match="name"):
        Persona(name="Bad Name", description="d", goals=["g"], expertise="e", style="s")
