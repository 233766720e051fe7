"""The task registry: built-in and third-party tasks register the same way.

Code registers with `register_task(task)`. Installed packages declare an entry point in the group
`codi_agents.tasks` whose value is a `Task` or a function returning one; entry points are loaded
lazily, the first time a task of that name is asked for (as simonw/llm loads its plugins). The
built-in `grounded_qa` and `support` tasks are declared by codi's own entry points.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from codi_agents.errors import TaskError
from codi_agents.tasks._base import ConversationCheck, ConversationDraft, PromptContext, Prompts, Task

ENTRY_POINT_GROUP = "codi_agents.tasks"

_registry: dict[str, Task] = {}
_origins: dict[str, str] = {}
"""Where each registered task came from, for error messages."""


def register_task(task: Task) -> Task:
    """Make `task` available by name; a name already registered or installed by a package is refused."""
    if not isinstance(task, Task):
        raise TaskError(f"register_task expects a codi_agents.Task, got {type(task).__name__}.")
    if task.name not in _registry:
        installed = _task_entry_points().get(task.name)
        if installed is not None:
            raise TaskError(
                f"A task named {task.name!r} is already installed by {_describe(installed)}; "
                "choose another name for yours."
            )
    return _add(task, "code")


def unregister_task(name: str) -> None:
    """Forget a task (tests and notebooks use this to clean up); an installed task loads again on request."""
    _registry.pop(name, None)
    _origins.pop(name, None)


def get_task(name: str) -> Task:
    """The task called `name`, loading its entry point on first use."""
    if name in _registry:
        return _registry[name]
    entry_point = _task_entry_points().get(name)
    if entry_point is not None:
        return _load(entry_point)
    available = ", ".join(sorted(set(_registry) | set(_task_entry_points()))) or "none"
    raise TaskError(f"Unknown task {name!r}. Installed tasks: {available}. `codi tasks` lists them.")


def list_tasks(errors: dict[str, TaskError] | None = None) -> dict[str, Task]:
    """Every available task by name: those registered in code and every installed entry point.

    A plug-in that fails to load raises `TaskError` naming it or, when `errors` is given, is recorded
    there by name and left out.
    """
    for name, entry_point in _task_entry_points().items():
        if name in _registry:
            continue
        try:
            _load(entry_point)
        except TaskError as error:
            if errors is None:
                raise
            errors[name] = error
    return dict(sorted(_registry.items()))


def task_modules(task: Task) -> list[str]:
    """The modules another process imports to get `task` by name: its entry point's module, and the module
    of its class when that is not codi's (a task registered in code has no entry point to be found by)."""
    modules = []
    entry_point = _task_entry_points().get(task.name)
    if entry_point is not None and _registry.get(task.name) is task:
        modules.append(entry_point.module)
    if not type(task).__module__.startswith("codi_agents."):
        modules.append(type(task).__module__)
    return list(dict.fromkeys(modules))


def _task_entry_points() -> dict[str, EntryPoint]:
    """Installed task entry points by name; two packages claiming one name is an error naming both."""
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        other = found.get(entry_point.name)
        if other is not None and other.value != entry_point.value:
            raise TaskError(
                f"Two installed packages declare the task {entry_point.name!r}: {_describe(other)} and "
                f"{_describe(entry_point)}. Uninstall one of them."
            )
        found[entry_point.name] = entry_point
    return found


def _load(entry_point: EntryPoint) -> Task:
    where = _describe(entry_point)
    try:
        loaded = entry_point.load()
    except TaskError as exc:
        raise TaskError(f"Task plug-in {entry_point.name!r} from {where} is invalid: {exc}") from exc
    except Exception as exc:
        raise TaskError(
            f"Task plug-in {entry_point.name!r} from {where} failed to import: {type(exc).__name__}: {exc}. "
            "Fix or reinstall that package, or uninstall it."
        ) from exc
    if callable(loaded) and not isinstance(loaded, Task):
        try:
            loaded = loaded()
        except TaskError as exc:
            raise TaskError(f"Task plug-in {entry_point.name!r} from {where} is invalid: {exc}") from exc
        except Exception as exc:
            raise TaskError(
                f"Task plug-in {entry_point.name!r} from {where} failed to build its task: {type(exc).__name__}: {exc}."
            ) from exc
    if not isinstance(loaded, Task):
        raise TaskError(
            f"Task plug-in {entry_point.name!r} from {where} gave a {type(loaded).__name__}, not a codi_agents.Task; "
            "the entry point must name a Task or a function returning one."
        )
    if loaded.name != entry_point.name:
        raise TaskError(
            f"Task plug-in {where} is registered as {entry_point.name!r} but its Task is named {loaded.name!r}; "
            "make the entry point's name and the task's name the same."
        )
    return _add(loaded, where)


def _add(task: Task, origin: str) -> Task:
    existing = _registry.get(task.name)
    if existing is not None and existing is not task:
        raise TaskError(
            f"A task named {task.name!r} is already registered (from {_origins.get(task.name, 'code')}); "
            "choose another name, or unregister_task() the old one first."
        )
    _registry[task.name] = task
    _origins[task.name] = origin
    return task


def _describe(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    package = f"package {dist.name} " if dist is not None else ""
    return f"{package}(entry point {entry_point.name} = {entry_point.value})"


__all__ = [
    "ENTRY_POINT_GROUP",
    "ConversationCheck",
    "ConversationDraft",
    "PromptContext",
    "Prompts",
    "Task",
    "get_task",
    "list_tasks",
    "register_task",
    "task_modules",
    "unregister_task",
]
