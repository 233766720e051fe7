"""The task registry: built-in and third-party tasks register the same way.

Code registers with `register_task(task)`. Installed packages declare an entry point in the group
`codi_agents.tasks` whose value is a `Task` or a function returning one; entry points are loaded
lazily, the first time a task of that name is asked for (as simonw/llm loads its plugins). The
built-in `grounded_qa` task is declared by codi's own entry point.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from codi_agents.errors import TaskError
from codi_agents.tasks.base import Prompts, Task

ENTRY_POINT_GROUP = "codi_agents.tasks"

_registry: dict[str, Task] = {}
_loaded_entry_points: set[str] = set()


def register_task(task: Task) -> Task:
    """Make `task` available by name; a different task under a taken name is refused."""
    if not isinstance(task, Task):
        raise TaskError(f"register_task expects a codi_agents.Task, got {type(task).__name__}.")
    existing = _registry.get(task.name)
    if existing is not None and existing is not task:
        raise TaskError(f"A task named {task.name!r} is already registered; choose another name.")
    _registry[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Forget a task registered in code (tests use this to clean up)."""
    _registry.pop(name, None)
    _loaded_entry_points.discard(name)


def get_task(name: str) -> Task:
    """The task called `name`, loading its entry point on first use."""
    if name in _registry:
        return _registry[name]
    for entry_point in _task_entry_points():
        if entry_point.name == name:
            return _load(entry_point)
    available = ", ".join(sorted(list_tasks())) or "none"
    raise TaskError(f"Unknown task {name!r}. Installed tasks: {available}. `codi tasks` lists them.")


def list_tasks() -> dict[str, Task]:
    """Every available task by name: those registered in code and every installed entry point."""
    for entry_point in _task_entry_points():
        if entry_point.name not in _registry:
            _load(entry_point)
    return dict(sorted(_registry.items()))


def _task_entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _load(entry_point: EntryPoint) -> Task:
    try:
        loaded = entry_point.load()
        task = loaded() if callable(loaded) and not isinstance(loaded, Task) else loaded
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(f"Task plug-in {entry_point.name!r} ({entry_point.value}) failed to load: {exc}") from exc
    if not isinstance(task, Task):
        raise TaskError(f"Task plug-in {entry_point.name!r} ({entry_point.value}) is not a codi_agents.Task.")
    if task.name != entry_point.name:
        raise TaskError(
            f"Task plug-in {entry_point.value} is registered as {entry_point.name!r} but names itself {task.name!r}."
        )
    _loaded_entry_points.add(entry_point.name)
    return register_task(task)


__all__ = ["ENTRY_POINT_GROUP", "Prompts", "Task", "get_task", "list_tasks", "register_task", "unregister_task"]
