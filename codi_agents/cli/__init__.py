"""The `codi` command line: one module per command, errors turned into messages and exit codes.

Exit codes: 0 success, 1 a run failed (server down, model misbehaved), 2 the user's input or
settings are wrong, 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
import typer
from rich.console import Console
from rich.markup import escape

from codi_agents.cli._common import Redactor
from codi_agents.errors import CodiError, UserError

app = typer.Typer(
    name="codi",
    help="Synthesize document-grounded, multi-turn training conversations (CoDi).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    """Add the commands; their modules import the heavy parts, so `codi --help` stays fast."""
    from codi_agents.cli import (
        _eval_critic_cmd,
        _eval_student_cmd,
        _export_cmd,
        _report_cmd,
        _run_cmd,
        _scan_cmd,
        _simulate_cmd,
        _tasks_cmd,
        _train_cmd,
    )

    app.command("simulate")(_simulate_cmd.simulate_command)
    app.command("tasks")(_tasks_cmd.tasks_command)
    app.command("run")(_run_cmd.run_command)
    app.command("export")(_export_cmd.export_command)
    app.command("report")(_report_cmd.report_command)
    app.command("eval-critic")(_eval_critic_cmd.eval_critic_command)
    app.command("eval-student")(_eval_student_cmd.eval_student_command)
    app.command("train")(_train_cmd.train_command)
    app.command("scan")(_scan_cmd.scan_command)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """`kill` (SIGTERM) stops a command the way Ctrl-C does: finished work kept, servers stopped."""
    raise KeyboardInterrupt


def _freeze_before_shutdown() -> None:
    """Move every object out of the garbage collector's sight just before the interpreter shuts down.

    A run's process holds a few hundred thousand objects (LangChain, pydantic, Chroma, the records), and the
    collections of interpreter shutdown walked them all: 0.6-0.8 s after a 12 s run had written its last file.
    Frozen objects are still freed when unreferenced; the process's memory goes back to the system at exit."""
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `codi` console script."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    atexit.unregister(_freeze_before_shutdown)  # once, however often `main` is called in one process
    atexit.register(_freeze_before_shutdown)  # before the command imports anything: runs after their exit handlers
    _register()
    err = Console(stderr=True)
    redactor = Redactor.from_environment(os.environ)  # the command adds its flags' and settings' secrets
    try:
        with _notes_to(err, redactor):
            code = app(args=argv, standalone_mode=False, obj=redactor)
    except CodiError as error:
        # soft_wrap: an error names paths and lines that a user copies; never break them at the terminal width
        message = escape(redactor(str(error)))  # "[settings]" in a message is text, not markup
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(error, UserError) else 1)
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/] Finished work is saved; nothing is left running.")
        sys.exit(130)
    except click.exceptions.Abort:
        err.print("[yellow]Aborted.[/]")
        sys.exit(130)
    except click.exceptions.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as error:
        sys.exit(error.exit_code)
    if code == 130:  # typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns the code
        err.print("[yellow]Interrupted.[/] Finished work is saved; nothing is left running.")
    if isinstance(code, int) and code:
        sys.exit(code)


@contextmanager
def _notes_to(console: Console, redactor: Redactor) -> Iterator[None]:
    """Show what the settings decided on their own (the model a server serves) on `console`, without secrets."""

    class Note(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            console.print(f"[dim]note:[/] {escape(redactor(record.getMessage()))}", highlight=False, soft_wrap=True)

    logger = logging.getLogger("codi_agents.config")
    handler, level = Note(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
