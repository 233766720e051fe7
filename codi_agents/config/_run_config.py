"""The config file (TOML): settings plus the keys of a batch run. One format for every `--config`.

A config file holds settings (any `Settings` field, as in `codi.toml`: at the top level, or in a
`[settings]` table; a field in one place only) and run keys: `n`, `per_document`,
`concurrency`, `shuffle_documents`, `[personas]`, `[flows]`, `[prices]`, `[dedup]`, `[limits]`.
`index` (the shared passage index cache's folder, or `run`; see `batch._index_choice`),
`workers`, `ray_address`, `worker_cpus`, `worker_memory` (a Ray cluster, see docs/cluster.md) and
`corpus_id_column`, `corpus_text_column`, `corpus_title_column`, `corpus_split` (Parquet and saved Hugging
Face corpora). `codi run` uses both; `codi simulate` and `codi eval-critic` use the settings and ignore the run
keys. A top-level `seed` is the seed of what the command makes: the plan's in a run, the
conversation's in `simulate` (`[settings] seed` sets only the latter). So a `codi.toml` is a run
config without run keys, and a run config works as a settings file.

    seed = 7
    n = 1000                      # conversations in all; or `per_document = 2`
    concurrency = 32              # conversations in flight
    [personas]                    # name or .toml path = weight; default: the task's (or all shipped)
    curious_student = 2
    busy_professional = 1
    [flows]                       # name or .toml path = weight; default: the task's flow
    grounded_qa = 3
    deep_dive = 1
    [settings]                    # any `Settings` field, as in codi.toml (keys may be "${ENV_VAR}")
    critic = { base_url = "http://localhost:8000/v1", model = "qwen2.5-7b-instruct" }
    [prices.assistant]            # USD per 1k tokens, for the cost estimate
    input = 0.00015
    output = 0.0006
    [dedup]
    drop = "conversations"
    [limits]
    endpoint_down_seconds = 60

Settings precedence, highest first: command-line flags, the config file, `codi.toml`, environment
(`codi_agents.config.resolve_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from codi_agents.config._settings import Role, Settings
from codi_agents.errors import ConfigError
from codi_agents.inputs._resources import describe_validation_error, read_toml

DEFAULT_CONCURRENCY = 16
"""Conversations in flight when nothing says otherwise; each holds at most one request at a time."""


class Price(BaseModel):
    """What one role's tokens cost, in dollars per 1,000 tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(default=0.0, ge=0, description="Per 1k prompt tokens.")
    output: float = Field(default=0.0, ge=0, description="Per 1k completion tokens.")


class DedupConfig(BaseModel):
    """Near-duplicate control with MinHash over word shingles."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Compute MinHash signatures and flag near-duplicates.")
    threshold: float = Field(default=0.8, gt=0, le=1, description="Jaccard similarity of two conversations.")
    question_threshold: float = Field(default=0.9, gt=0, le=1, description="Jaccard similarity of two questions.")
    shingle_words: int = Field(default=3, ge=1, le=8, description="Words per shingle of a conversation.")
    question_shingle_words: int = Field(default=2, ge=1, le=8, description="Words per shingle of a question.")
    num_perm: int = Field(default=64, ge=16, le=512, description="MinHash permutations: accuracy against memory.")
    drop: Literal["none", "conversations", "questions"] = Field(
        default="none",
        description="`conversations`: near-duplicate conversations go to rejected.jsonl; `questions`: also those "
        "repeating a question of an earlier conversation; `none`: only flag them.",
    )


class Limits(BaseModel):
    """When a run gives up, and how often it reports."""

    model_config = ConfigDict(extra="forbid")

    endpoint_down_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Stop when most requests to an endpoint failed for this long; fills the endpoints' "
        "`endpoint_down_seconds` setting where it is unset (`settings_for_run`).",
    )
    max_consecutive_errors: int = Field(
        default=50, ge=1, description="Stop after this many conversations in a row failed with an unexpected error."
    )
    progress_seconds: float = Field(default=10.0, gt=0, description="Seconds between progress lines without a TTY.")
    chunk_timeout_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="With Ray workers: a worker that sends no chunk of conversations back for this long counts as "
        "hung; it is stopped and its conversations go to the other workers. Generous, since a chunk (up to 4 "
        "conversations) may wait on rate limits and slow models; raise it for very slow models.",
    )
    gc_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Allocations between young-generation garbage collections while the run lasts (Python's default "
        "is 700; many conversations in flight make frequent full collections cost about 15% of the run's CPU). "
        "The previous thresholds are restored at the end; 0 leaves the collector alone.",
    )


class RunConfig(BaseModel):
    """A batch run, as read from its TOML file (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, description="Seed of the plan: same config, same conversation ids, same order.")
    n: int | None = Field(default=None, ge=1, description="Conversations in all, spread over the documents.")
    per_document: int | None = Field(default=None, ge=1, description="Conversations per document (default 1).")
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=4096, description="Conversations in flight.")
    shuffle_documents: bool = Field(default=False, description="Visit documents in a seeded order, not file order.")
    personas: dict[str, float] = Field(default_factory=dict, description="Persona name or path -> weight.")
    flows: dict[str, float] = Field(default_factory=dict, description="Flow name or path -> weight.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="`Settings` fields, as in codi.toml (the file's settings layer)."
    )
    prices: dict[Role, Price] = Field(default_factory=dict, description="Per role, for the cost estimate.")
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    limits: Limits = Field(default_factory=Limits)
    corpus_id_column: str = Field(default="id", min_length=1, description="Id column of a Parquet/HF corpus.")
    corpus_text_column: str = Field(default="text", min_length=1, description="Text column of a Parquet/HF corpus.")
    corpus_title_column: str | None = Field(default=None, description="Title column of a Parquet/HF corpus.")
    corpus_split: str | None = Field(default=None, description="Split of a saved Hugging Face DatasetDict.")
    workers: int | None = Field(
        default=None, ge=1, le=4096, description="Ray worker processes; unset (and no ray_address): one process."
    )
    ray_address: str | None = Field(
        default=None, description="A Ray cluster to join (host:port, ray://host:port, auto); unset: a local one."
    )
    worker_cpus: float = Field(default=1.0, gt=0, description="CPUs Ray reserves for each worker.")
    worker_memory: int | None = Field(
        default=None, gt=0, description="Memory Ray reserves for each worker: bytes, or a size such as `2GB`."
    )
    index: str | None = Field(
        default=None,
        min_length=1,
        description="Where the passage index lives: a folder for the shared index cache (an entry per chunking, "
        "embedding model and detector inside), or `run` for a private index in the run directory; default: "
        "`$CODI_CACHE_DIR/index`, else the user cache folder (~/.cache/codi/index on Linux).",
    )
    _source: str = PrivateAttr(default="run config")

    @property
    def source(self) -> str:
        """Where the config came from, for messages: the file's path, or `run config`."""
        return self._source

    @property
    def distributed(self) -> bool:
        """True when the run's conversations are simulated by Ray workers (`workers` or `ray_address` set)."""
        return self.workers is not None or self.ray_address is not None

    @field_validator("worker_memory", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.n is not None and self.per_document is not None:
            raise ValueError("give either `n` (conversations in all) or `per_document`, not both")
        for table, weights in (("personas", self.personas), ("flows", self.flows)):
            bad = [name for name, weight in weights.items() if weight < 0]
            if bad:
                raise ValueError(f"{table}: weights must not be negative; fix {', '.join(bad)}")
            if weights and sum(weights.values()) <= 0:
                raise ValueError(f"{table}: at least one weight must be above 0")
        return self

    def planned(self, documents: int) -> int:
        """Conversations planned over `documents` documents."""
        if self.n is not None:
            return self.n if documents else 0
        return (self.per_document or 1) * documents

    def public(self) -> dict[str, Any]:
        """The config as written to the manifest: no `[settings]` table (it may hold keys; the manifest
        records the resolved, key-free settings instead)."""
        return self.model_dump(mode="json", exclude={"settings"})


_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """Bytes in `2GB`, `512MiB`, `1.5G` or `1000000` (binary units: 1 GB = 2**30 bytes, as Ray reports them)."""
    cleaned = text.strip().upper().replace(" ", "").removesuffix("IB").removesuffix("B")
    number = cleaned.rstrip("KMGT")
    unit = cleaned[len(number) :]
    try:
        size = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"{text!r} is not a size; write bytes or e.g. 512MB, 2GB") from None
    if size < 1:
        raise ValueError(f"{text!r}: a size must be at least 1 byte")
    return int(size)


RUN_KEYS = frozenset(RunConfig.model_fields) - {"settings"}
"""The top-level keys of a config file that belong to a batch run rather than to the settings."""


def split_config(data: Mapping[str, Any], where: str = "config file") -> tuple[dict[str, Any], dict[str, Any]]:
    """A config file's content as (settings layer, run keys).

    The settings layer is the top-level keys that are not run keys and the `[settings]` table; a
    setting may be written in one of the two places, not both. A top-level `seed` goes to both
    parts (a `[settings]` seed then sets only the conversation's). Unknown keys stay in the
    settings layer, where validation names them."""
    table = data.get("settings", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: `settings` must be a table ([settings]) of Settings fields.")
    run = {key: value for key, value in data.items() if key in RUN_KEYS}
    top = {key: value for key, value in data.items() if key not in RUN_KEYS and key != "settings"}
    twice = sorted(set(top) & set(table))
    if twice:
        raise ConfigError(f"{where}: {', '.join(twice)}: set at the top level and in [settings]; keep one.")
    seed = {"seed": data["seed"]} if "seed" in data else {}
    return {**seed, **top, **table}, run


def read_config_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a config file: (settings layer, run keys), as `split_config` splits them."""
    return split_config(read_toml(Path(path), ConfigError), str(path))


def load_run_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read a config file (or none) as a run config, with `overrides` (`n=10`, `concurrency=8`,
    `dedup={"drop": "conversations"}`; None values ignored; a table override changes only its keys)."""
    settings, data = read_config_file(path) if path else ({}, {})
    unknown = sorted(set(settings) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(
            f"{path}: {', '.join(unknown)}: unknown field (neither a setting nor a run key); "
            f"run keys are {', '.join(sorted(RUN_KEYS))}."
        )
    for key, value in overrides.items():
        if value is None:
            continue
        current = data.get(key)
        data[key] = {**current, **value} if isinstance(value, Mapping) and isinstance(current, Mapping) else value
    if overrides.get("n") is not None and overrides.get("per_document") is None:
        data.pop("per_document", None)
    if overrides.get("per_document") is not None and overrides.get("n") is None:
        data.pop("n", None)
    try:
        config = RunConfig.model_validate({**data, "settings": settings})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path or "run config", exc)) from exc
    config._source = str(path) if path else "run config"
    return config


def settings_for_run(settings: Settings, config: RunConfig) -> Settings:
    """The settings a batch run builds its `Session` from: what the user left unset, filled for a run.

    The aiohttp transport (one event loop, closed at the end) and each endpoint's down window from
    `[limits] endpoint_down_seconds`. (Where the passage index lives is decided once the run directory is
    locked: `batch._index_choice`.)"""
    endpoint = settings.endpoint
    update: dict[str, Any] = {}
    if endpoint.http_transport is None:
        update["http_transport"] = "aiohttp"
    if endpoint.endpoint_down_seconds is None:
        update["endpoint_down_seconds"] = config.limits.endpoint_down_seconds
    return settings.model_copy(update={"endpoint": endpoint.model_copy(update=update)}) if update else settings
