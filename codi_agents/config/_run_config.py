"""The run config (TOML): what to generate from a corpus, with which models, and what it may cost.

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

Settings precedence, highest first: command-line flags, `[settings]`, `codi.toml`, environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from codi_agents.config._settings import Role, Settings, load_settings
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
        default=30.0, gt=0, description="Stop when most requests to an endpoint failed for this long."
    )
    max_consecutive_errors: int = Field(
        default=50, ge=1, description="Stop after this many conversations in a row failed with an unexpected error."
    )
    progress_seconds: float = Field(default=10.0, gt=0, description="Seconds between progress lines without a TTY.")
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
    settings: dict[str, Any] = Field(default_factory=dict, description="`Settings` fields, as in codi.toml.")
    prices: dict[Role, Price] = Field(default_factory=dict, description="Per role, for the cost estimate.")
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    limits: Limits = Field(default_factory=Limits)

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


def load_run_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read a run config file (or none) with `overrides` (`n=10`, `concurrency=8`; None values ignored)."""
    data: dict[str, Any] = dict(read_toml(Path(path), ConfigError)) if path else {}
    data.update({key: value for key, value in overrides.items() if value is not None})
    if overrides.get("n") is not None and overrides.get("per_document") is None:
        data.pop("per_document", None)
    if overrides.get("per_document") is not None and overrides.get("n") is None:
        data.pop("n", None)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path or "run config", exc)) from exc


def resolve_settings(
    config: RunConfig,
    *,
    config_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """`Settings` for the run: flags over the config's `[settings]` over codi.toml over the environment."""
    # The settings module's own merge and ${VAR} expansion, so that [settings] reads exactly like codi.toml.
    from codi_agents.config._settings import _deep_merge, _expand_env

    env = os.environ if environ is None else environ
    where = f"{config_path or 'run config'} [settings]"
    merged: dict[str, Any] = {}
    _deep_merge(merged, _expand_env(config.settings, env, where))
    _deep_merge(merged, {key: value for key, value in flags.items() if value is not None})
    try:
        return load_settings(None, environ=env, **merged)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from error
