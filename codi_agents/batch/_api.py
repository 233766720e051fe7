"""The Python API of batch runs: `run` (returns the statistics), `arun`, and `iter_conversations`.

summary = codi_agents.run("docs.jsonl", "out/", n=100, concurrency=32)

async with codi_agents.iter_conversations("docs/", "out/", config="run.toml") as conversations:
    async for conversation in conversations:
        if conversation.accepted:
            queue.put(training_messages(conversation, task))  # codi_agents.export; task: the run's Task
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents.batch._progress import LogProgress, ProgressView
from codi_agents.batch._runner import BatchRun
from codi_agents.config._resolve import resolve_settings
from codi_agents.config._run_config import RUN_KEYS, RunConfig, load_run_config
from codi_agents.config._settings import Settings
from codi_agents.inputs._documents import Document
from codi_agents.llm._models import ModelsArgument


def iter_conversations(
    corpus: str | Path | Sequence[Document],
    out: str | Path | None = None,
    *,
    config: str | Path | RunConfig | None = None,
    n: int | None = None,
    per_document: int | None = None,
    concurrency: int | None = None,
    seed: int | None = None,
    resume: bool = True,
    force: bool = False,
    models: ModelsArgument = None,
    embedding_function: EmbeddingFunction[Documents] | None = None,
    settings: Settings | None = None,
    progress: ProgressView | None = None,
    secrets: Sequence[str] = (),
    **overrides: Any,
) -> BatchRun:
    """A batch run to iterate with `async for`: each finished conversation, accepted or not, once it is on disk.

    `corpus`: a JSONL file, a folder, a glob, or `Document`s. `out`: the run directory (None: write
    nothing; the passage index stays in memory unless `index` names a cache folder). `config`: a
    config file (settings and run keys, see `codi_agents.config._run_config`), or a `RunConfig`
    already read with `load_run_config`; `n`,
    `per_document`, `concurrency`, `seed` and any other run key given by keyword (`workers=2`,
    `corpus_text_column="body"`) override a file's run keys. `models`/`embedding_function`
    replace the configured ones (tests, custom clients); `settings` replaces the resolved settings;
    other keyword arguments are `Settings` fields (`critic={"model": "gpt-4o"}`), over the config
    file, `./codi.toml` and the environment. `secrets`: more strings to keep out of what the run
    writes (the settings' keys always are). After the loop, `.summary` holds the statistics.
    """
    run_overrides = {"n": n, "per_document": per_document, "concurrency": concurrency, "seed": seed}
    run_overrides |= {key: overrides.pop(key) for key in list(overrides) if key in RUN_KEYS}
    if isinstance(config, RunConfig):
        if any(value is not None for value in run_overrides.values()):
            raise TypeError("run keys (n, workers, ...) override a file: give them to load_run_config")
        run_config = config
    else:
        run_config = load_run_config(config, **run_overrides)
    if settings is not None and not overrides:
        resolved = settings
    else:  # keyword settings over the given settings, or over the config file, codi.toml and the environment
        resolved = resolve_settings(flags=overrides, config=run_config, base=settings)
    return BatchRun(
        corpus,
        out,
        config=run_config,
        settings=resolved,
        resume=resume,
        force=force,
        models=models,
        embedding_function=embedding_function,
        progress=progress or LogProgress(interval=run_config.limits.progress_seconds),
        secrets=secrets,
    )


async def arun(corpus: str | Path | Sequence[Document], out: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run a batch to its end; return its statistics (as written to `summary.json`)."""
    batch = iter_conversations(corpus, out, **kwargs)
    async with batch:
        async for _ in batch:
            pass
    assert batch.summary is not None
    return batch.summary


def run(corpus: str | Path | Sequence[Document], out: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """Synchronous `arun`; safe to call from code that already runs an event loop (e.g. Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(corpus, out, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, arun(corpus, out, **kwargs)).result()
