"""Whole-file JSON of a run directory: written atomically, read back into its typed model.

A crash while writing leaves the old file or the new one, never half of one. Reading parses the
file with its model; anything missing, renamed or mistyped fails with a `RunDirectoryError` that
names the file, the field and the codi version that wrote it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from codi_agents._version import __version__
from codi_agents.errors import RunDirectoryError

ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_LISTED_FIELDS = 3


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Make the names in `directory` durable (a new or replaced file's name is on disk once this returns)."""
    with contextlib.suppress(OSError):  # not every platform can open a directory
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def read_run_file(path: Path, model: type[ModelT]) -> ModelT | None:
    """The JSON file at `path` parsed as `model`; None when the file does not exist."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        where = f", line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise RunDirectoryError(
            f"{path}{where}: not valid JSON ({error}). Restore the file or delete it to continue."
        ) from error
    if not isinstance(data, dict):
        raise RunDirectoryError(f"{path}: expected a JSON object, found {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        writer = data.get("codi_version")
        by = f"written by codi {writer}" if isinstance(writer, str) else "written by another codi version or by hand"
        raise RunDirectoryError(
            f"{path}: not a {model.__name__} this codi ({__version__}) can read ({by}): {field_errors(error)}. "
            "Read it with the codi version that wrote it, or delete it (a resume writes it again)."
        ) from error


def field_errors(error: ValidationError) -> str:
    """The first few fields a validation error names, as `field: problem`."""
    problems = [
        f"{'.'.join(str(part) for part in item['loc']) or 'the object'}: {item['msg'].lower()}"
        for item in error.errors()[:MAX_LISTED_FIELDS]
    ]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def dump_json(model: BaseModel) -> str:
    """`model` as the indented JSON text a run directory keeps."""
    return json.dumps(model.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
