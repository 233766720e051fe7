"""The manifest of a run (`DIR/manifest.json`): what made it, and the check that a resume continues the same run.

The run's fingerprint hashes everything that decides which conversations are planned and how
they come out: the output-affecting settings, the task and its version, the critic calibration,
the embedding model, the seed, the personas and flows with their weights and contents, and the
corpus. `n` is left out on purpose: raising it extends a run. Keys never enter the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codi_agents._ids import stable_hash
from codi_agents._version import __version__
from codi_agents.batch._plan import Plan
from codi_agents.batch._streamed import RunCorpus
from codi_agents.config._run_config import RunConfig
from codi_agents.config._settings import ROLES
from codi_agents.errors import RunDirectoryError
from codi_agents.llm._models import ModelsArgument, role_instances
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction, embedding_identity
from codi_agents.rundir._models import (
    ConcurrencyRecord,
    CorpusRecord,
    IndexRecord,
    ManifestConfig,
    RunFiles,
    RunManifest,
    RunStatus,
    SessionRecord,
)
from codi_agents.simulation._session import Session
from codi_agents.tasks._base import Task

MAX_LISTED_CHANGES = 8


def run_inputs(
    plan: Plan[Any], corpus: RunCorpus, task: Task, session: Session, config: RunConfig, embedding: str
) -> dict[str, Any]:
    """Everything the run's fingerprint covers, by part, so that a refusal can say which part changed."""
    return {
        "settings": session.settings.output_affecting(),
        "task": {"name": task.name, "version": task.version},
        "calibration": {
            "version": session.calibration.version,
            "content": session.calibration.digest(),
        },
        "dedup": config.dedup.model_dump(mode="json"),  # changing what is dropped halfway mixes two policies
        "embedding": embedding,
        "models": session.model_instance_names,  # chat models passed in; configured ones are in the settings
        "seed": config.seed,
        "shuffle_documents": config.shuffle_documents,
        "personas": {
            p.name: {"weight": w, "content": stable_hash(p.model_dump(mode="json"))} for p, w in plan.personas
        },
        "flows": {f.name: {"weight": w, "content": stable_hash(f.model_dump(mode="json"))} for f, w in plan.flows},
        "corpus": {"fingerprint": corpus.fingerprint(), "documents": len(corpus.documents)},
    }


def run_fingerprint(inputs: Mapping[str, Any]) -> str:
    """The fingerprint of a run's inputs."""
    return stable_hash(dict(inputs))


def check_fingerprint(previous: RunManifest, inputs: Mapping[str, Any], out: Path) -> None:
    """Refuse to resume a run whose inputs changed, saying what changed."""
    if previous.fingerprint == run_fingerprint(inputs):
        return
    changes = describe_changes(previous.inputs, inputs)
    raise RunDirectoryError(
        f"{out} holds a run made with a different config; changed: {'; '.join(changes)}. "
        "Resume with the same config, add --force to go on with the new one (its conversations get new ids "
        "and are added to the same files), or choose another --out."
    )


def describe_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Readable differences between two runs' inputs."""
    changes: list[str] = []
    for part in after:
        old, new = before.get(part), after[part]
        if old == new:
            continue
        if part in ("settings", "dedup") and isinstance(old, dict) and isinstance(new, dict):
            changes.extend(_dict_changes("setting" if part == "settings" else part, old, new))
        elif part in ("personas", "flows") and isinstance(old, dict) and isinstance(new, dict):
            changes.extend(_weighted_changes(part[:-1], old, new))
        elif part == "corpus" and isinstance(old, dict):
            changes.append(
                f"the corpus ({old.get('documents')} documents before, {new['documents']} now, or their texts)"
            )
        else:
            changes.append(f"{part} ({_short(old)} -> {_short(new)})")
    return changes[:MAX_LISTED_CHANGES] or ["the fingerprint (the manifest was made by another codi version)"]


def _dict_changes(noun: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        f"{noun} {key} ({_short(old.get(key))} -> {_short(new.get(key))})"
        for key in keys
        if old.get(key) != new.get(key)
    ]


def _weighted_changes(noun: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changes = [f"{noun} {name} added" for name in new if name not in old]
    changes += [f"{noun} {name} removed" for name in old if name not in new]
    for name in new:
        if name in old and old[name] != new[name]:
            if old[name].get("weight") != new[name].get("weight"):
                changes.append(f"{noun} {name} weight ({old[name].get('weight')} -> {new[name].get('weight')})")
            else:
                changes.append(f"{noun} {name} file contents")
    return changes


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def models_per_role(session: Session, instances: ModelsArgument) -> dict[str, str]:
    """`model @ endpoint` per role, and the embedding model's, for people and manifests; never a key."""
    given = role_instances(instances)
    names = session.models
    described: dict[str, str] = {}
    for role in ROLES:
        endpoint = session.settings.endpoint_for(role)
        if role in given:
            described[role] = f"{names[role]} @ (a model object given in code)"
        elif endpoint.configured:
            described[role] = endpoint.model_copy(update={"model": names[role]}).describe()
        else:
            described[role] = f"{names[role]} @ embedded (llama.cpp, started by codi)"
    described["embedding"] = _embedding_model(session)
    return described


def _embedding_model(session: Session) -> str:
    embed = session.embedding_function
    if isinstance(embed, MiniLMEmbeddingFunction):
        return "all-MiniLM-L6-v2 int8 @ in process (ONNX Runtime)"
    describe = getattr(embed, "describe", None)
    shown = describe() if callable(describe) else None
    return shown if isinstance(shown, str) else f"{embedding_identity(embed)} @ (a function given in code)"


@dataclass(frozen=True)
class ManifestParts:
    """What the manifest of a session records, gathered by the run's preparation."""

    inputs: Mapping[str, Any]
    plan: Plan[Any]
    corpus: RunCorpus
    config: RunConfig
    session: Session
    instances: ModelsArgument
    requests_per_endpoint: Mapping[str, int]
    index: IndexRecord | None = None


def make_manifest(previous: RunManifest | None, parts: ManifestParts) -> RunManifest:
    """The manifest of this session of the run; an earlier session's history is kept."""
    now = datetime.now(UTC)
    fingerprint = run_fingerprint(parts.inputs)
    sessions = list(previous.sessions) if previous else []
    sessions.append(SessionRecord(started_at=now, ended_at=None, status="running", fingerprint=fingerprint, finished=0))
    earlier = list(previous.previous_fingerprints) if previous else []
    if previous and previous.fingerprint not in (fingerprint, *earlier):
        earlier.append(previous.fingerprint)
    corpus = parts.corpus
    return RunManifest(
        codi_version=__version__,
        created_at=previous.created_at if previous else now,
        updated_at=now,
        status="running",
        fingerprint=fingerprint,
        previous_fingerprints=earlier,
        settings_fingerprint=parts.session.fingerprint,
        planned=len(parts.plan),
        task=parts.plan.task,
        models=models_per_role(parts.session, parts.instances),
        config=ManifestConfig.model_validate({**parts.config.public(), "n": len(parts.plan)}),
        inputs=dict(parts.inputs),
        corpus=CorpusRecord(
            source=corpus.source,
            documents=len(corpus.documents),
            skipped=len(corpus.skipped),
            duplicates=len(corpus.duplicates),
            fingerprint=corpus.fingerprint(),
        ),
        concurrency=ConcurrencyRecord(
            conversations=parts.config.concurrency, requests_per_endpoint=dict(parts.requests_per_endpoint)
        ),
        files=RunFiles(),
        sessions=sessions,
        index=parts.index,
    )


def session_ended(
    manifest: RunManifest, status: RunStatus, *, finished: int, wall_seconds: float | None
) -> RunManifest:
    """The manifest with this session's status, finished count and wall time brought up to date."""
    now = datetime.now(UTC)
    current = manifest.sessions[-1].model_copy(
        update={
            "status": status,
            "ended_at": now if status != "running" else None,
            "finished": finished,
            "wall_seconds": round(wall_seconds, 2) if wall_seconds is not None else None,
        }
    )
    return manifest.model_copy(
        update={"status": status, "updated_at": now, "sessions": [*manifest.sessions[:-1], current]}
    )
