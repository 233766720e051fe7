"""Personas: who the simulated user is. Data files in `personas/*.toml`, validated on load."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from codi_agents.errors import PersonaError
from codi_agents.inputs._resources import available_files, load_toml_model, locate

NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"


class Persona(BaseModel):
    """A simulated user: what they want, what they know and how they talk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Identifier, lowercase with underscores.")
    description: str = Field(min_length=1, description="Who this person is, in a sentence or two.")
    goals: list[str] = Field(min_length=1, description="What they want from the conversation.")
    expertise: str = Field(min_length=1, description="What they already know about the subject.")
    style: str = Field(min_length=1, description="How they write: length, tone, register.")
    language: str = Field(default="English", min_length=1, description="The language they write in.")
    tasks: list[str] = Field(default_factory=list, description="Tasks this persona is meant for; empty means any.")

    def render(self) -> str:
        """The persona as the user simulator reads it."""
        goals = "; ".join(self.goals)
        return (
            f"{self.description}\nGoals: {goals}\nKnows: {self.expertise}\n"
            f"Writing style: {self.style}\nLanguage: {self.language}"
        )


def load_persona(spec: Persona | str | Path, *, search_dirs: Iterable[Path] = ()) -> Persona:
    """A `Persona` from an object, a `.toml` path, or a name looked up in `search_dirs` then `personas/`."""
    if isinstance(spec, Persona):
        return spec
    return read_persona_file(locate(spec, "personas", search_dirs, PersonaError, "persona"))


def read_persona_file(path: Path) -> Persona:
    """Read and validate one persona file; the `name` defaults to the file's stem."""
    return load_toml_model(path, Persona, PersonaError, name=path.stem)


def available_personas(search_dirs: Iterable[Path] = ()) -> dict[str, Path]:
    """Persona names and their files, earlier folders winning over later ones."""
    return available_files("personas", search_dirs)
