"""Where codi's data files live, and how a TOML data file becomes a validated model.

Flow graphs and personas ship as TOML at the top of the source tree (`graphs/`, `personas/`);
a built wheel carries the same folders inside the package as `codi_agents/_data/`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError

from codi_agents.errors import UserError

DataKind = Literal["graphs", "personas"]
ModelT = TypeVar("ModelT", bound=BaseModel)

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def data_dir(kind: DataKind) -> Path:
    """The folder of shipped `kind` files: inside the package when installed, else the source tree's."""
    packaged = _PACKAGE_DIR / "_data" / kind
    return packaged if packaged.is_dir() else _PACKAGE_DIR.parent / kind


def read_toml(path: Path, error: type[UserError]) -> dict[str, object]:
    """Parse a TOML file, turning every failure into `error` naming the file."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise error(f"{path}: file not found.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc}). Fix the syntax at that place.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read ({exc}).") from exc


def load_toml_model(path: Path, model: type[ModelT], error: type[UserError], **defaults: object) -> ModelT:
    """Read `path` into `model` (`defaults` fill absent top-level fields); errors name the file and field."""
    data = {**defaults, **read_toml(path, error)}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(describe_validation_error(path, exc)) from exc


def describe_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: `<file>: <field>: <message>`."""
    lines = []
    for problem in exc.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "missing":
            message = "this field is required; add it"
        elif problem["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        lines.append(f"{path}: {field}: {message}")
    return "\n".join(lines)


def available_files(kind: DataKind, search_dirs: Iterable[Path] = ()) -> dict[str, Path]:
    """Names and files of `kind` in `search_dirs` then the shipped folder; earlier folders win."""
    found: dict[str, Path] = {}
    for folder in [*search_dirs, data_dir(kind)]:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    return found


def locate(spec: str | Path, kind: DataKind, search_dirs: Iterable[Path], error: type[UserError], noun: str) -> Path:
    """The file meant by `spec`: a `.toml` path, or a name looked up in `search_dirs` then the shipped folder."""
    path = Path(spec)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise error(f"{noun.capitalize()} file not found: {path}.")
        return path
    available = available_files(kind, search_dirs)
    if str(spec) in available:
        return available[str(spec)]
    names = ", ".join(sorted(available)) or "none"
    raise error(f"Unknown {noun} {str(spec)!r}. Available: {names}. Or give the path of a .toml file.")
