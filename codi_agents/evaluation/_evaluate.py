"""Measure the critic against human judgements: exactly the critic that simulation runs, on labelled items.

Each item becomes one critic pass (`assess_exchange` with the task's rules): its knowledge is the
passages, its history the conversation, its response the assistant turn, on a neutral answerable
link. A rejected turn counts as "unfaithful". The judge is chosen as a `Session` chooses it: the
embedded model unless an endpoint is configured for the critic (or a chat model is given), with the
judge weight from the settings or the calibration; a weight of 0 skips the judge and starts no model.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from codi_agents._record import Verdict
from codi_agents.config._discovery import with_discovered_models
from codi_agents.config._roles import RoleSpecs, resolve_roles
from codi_agents.config._settings import ROLES, Settings
from codi_agents.critic._assess import assess_exchange
from codi_agents.critic._calibration import Calibration, item_digest, load_calibration
from codi_agents.critic._checkers import faithfulness_checker
from codi_agents.critic._similarity import Embed
from codi_agents.evaluation._items import item_context
from codi_agents.evaluation._labelled import BadLine, LabelledItem, read_labelled
from codi_agents.evaluation._metrics import Metrics
from codi_agents.llm._calls import RoleModel
from codi_agents.tasks import get_task
from codi_agents.tasks._base import Task


@dataclass(frozen=True)
class ItemResult:
    """The critic's decision on one labelled item."""

    id: str
    group: str
    label: str
    rejected: bool
    verdict: Verdict
    seconds: float
    fitted: bool
    """The item was among those the calibration was fitted on."""

    @property
    def correct(self) -> bool:
        """The critic agreed with people."""
        return self.rejected == (self.label == "unfaithful")


@dataclass
class EvaluationReport:
    """Everything `codi eval-critic` prints, for people and (`as_dict`) for machines."""

    file: str
    critic: str
    judge_weight: float
    calibration: str
    results: list[ItemResult]
    skipped: list[BadLine] = field(default_factory=list)

    @property
    def overall(self) -> Metrics:
        """Metrics over every evaluated item."""
        return _metrics(self.results)

    @property
    def held_out(self) -> Metrics | None:
        """Metrics over the items the calibration was not fitted on, when some of the items were fitted on."""
        if not any(result.fitted for result in self.results):
            return None
        return _metrics([result for result in self.results if not result.fitted])

    @property
    def fitted(self) -> Metrics | None:
        """Metrics over the items the calibration was fitted on, if any."""
        fitted = [result for result in self.results if result.fitted]
        return _metrics(fitted) if fitted else None

    @property
    def checker(self) -> Metrics | None:
        """The faithfulness checker alone (its `faithfulness` signal at its own threshold), on items that have it."""
        threshold = faithfulness_checker().threshold
        scored = [r for r in self.results if "faithfulness" in r.verdict.signals]
        if not scored:
            return None
        return Metrics.from_pairs(
            (r.label == "unfaithful", r.verdict.signals["faithfulness"] < threshold) for r in scored
        )

    @property
    def by_group(self) -> dict[str, Metrics]:
        """Metrics per source (`source/meta.data_source`)."""
        groups = sorted({result.group for result in self.results})
        return {group: _metrics([r for r in self.results if r.group == group]) for group in groups}

    @property
    def median_ms(self) -> float:
        """Median wall time of one critic pass, in milliseconds."""
        return statistics.median(r.seconds for r in self.results) * 1000 if self.results else 0.0

    @property
    def rejections(self) -> dict[str, int]:
        """How many items were rejected for each reason."""
        return dict(Counter(r.verdict.rejection or "accepted" for r in self.results).most_common())

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, per-item decisions included."""
        held_out, fitted, checker = self.held_out, self.fitted, self.checker
        return {
            "file": self.file,
            "critic": self.critic,
            "judge_weight": self.judge_weight,
            "calibration": self.calibration,
            "items": len(self.results),
            "skipped_lines": [{"line": bad.line, "error": bad.error} for bad in self.skipped],
            "overall": self.overall.as_dict(),
            "held_out": held_out.as_dict() if held_out else None,
            "fitted": fitted.as_dict() if fitted else None,
            "checker_alone": checker.as_dict() if checker else None,
            "by_source": {group: metrics.as_dict() for group, metrics in self.by_group.items()},
            "median_ms_per_item": round(self.median_ms, 2),
            "rejections": self.rejections,
            "results": [
                {
                    "id": r.id,
                    "source": r.group,
                    "label": r.label,
                    "predicted": "unfaithful" if r.rejected else "faithful",
                    "rejection": r.verdict.rejection,
                    "score": r.verdict.score,
                    "ms": round(r.seconds * 1000, 2),
                    "fitted": r.fitted,
                    "decided_by": r.verdict.decided_by,
                    "reasons": r.verdict.reasons,
                    "signals": r.verdict.signals,
                    "judge": r.verdict.judge,
                }
                for r in self.results
            ],
        }


@dataclass(frozen=True)
class CriticChoice:
    """The judge a run would use, and its weight: None and 0 when the judge is skipped."""

    model: RoleModel | None
    judge_weight: float
    description: str


@contextmanager
def open_critic(
    settings: Settings, calibration: Calibration, critic_model: BaseChatModel | None = None
) -> Iterator[CriticChoice]:
    """The critic's judge from the same role spec and judge-weight rule as a `Session`; starts the embedded
    model only if the critic needs it. Only the critic is built (and only its endpoint asked for a model)."""
    from codi_agents.llm._models import build_role_models

    instances = dict.fromkeys(ROLES, critic_model) if critic_model is not None else {}
    not_asked = ROLES if critic_model is not None else ("user", "assistant")  # only the critic's endpoint
    settings = with_discovered_models(settings, not_asked)
    roles = resolve_roles(settings, instances.keys())
    weight = roles.judge_weight(
        settings.judge_weight, embedded=calibration.judge_weight_embedded, remote=calibration.judge_weight_remote
    )
    if weight <= 0:
        yield CriticChoice(None, 0.0, "no judge (signals only)")
        return
    critic = roles["critic"]
    only_critic = RoleSpecs({"critic": critic})
    if not critic.embedded:
        models = build_role_models(settings, instances, roles=only_critic)
        given = f"{models['critic'].name} (given)"
        yield CriticChoice(models["critic"], weight, given if critic_model is not None else critic.describe())
        return
    from codi_agents.llm._local_server import LocalModelServer

    with LocalModelServer(context_window=settings.local_context_window, threads=settings.local_threads) as server:
        models = build_role_models(
            settings, {}, roles=only_critic, local_url=server.base_url, local_model_name=server.model_name
        )
        yield CriticChoice(models["critic"], weight, f"{server.model_name} @ embedded")


async def evaluate_items(
    items: Sequence[LabelledItem],
    *,
    task: Task,
    calibration: Calibration,
    critic: CriticChoice,
    embed: Embed | None,
    parse_retries: int = 2,
    concurrency: int = 1,
) -> list[ItemResult]:
    """Run the critic on every item (at most `concurrency` at a time), in input order."""
    fitted = set(calibration.fit_items)
    gate = asyncio.Semaphore(max(concurrency, 1))

    async def one(item: LabelledItem) -> ItemResult:
        async with gate:
            started = time.perf_counter()
            assessment = await assess_exchange(
                item_context(item, task),
                critic=critic.model,
                calibration=calibration,
                judge_weight=critic.judge_weight,
                embed=embed,
                parse_retries=parse_retries,
                always_check=True,  # the checker alone is reported on every item
            )
            seconds = time.perf_counter() - started
        return ItemResult(
            id=item.id,
            group=item.group,
            label=item.label,
            rejected=not assessment.verdict.accepted,
            verdict=assessment.verdict,
            seconds=seconds,
            fitted=item_digest(item.id) in fitted,
        )

    return list(await asyncio.gather(*(one(item) for item in items)))


def evaluate_file(
    path: Path,
    settings: Settings,
    *,
    critic_model: BaseChatModel | None = None,
    embedding_function: Embed | None = None,
    calibration: Calibration | None = None,
    limit: int | None = None,
    concurrency: int = 1,
) -> EvaluationReport:
    """Read a labelled JSONL file and measure the critic on it (the first `limit` usable items if given)."""
    items, skipped = read_labelled(path)
    if limit is not None:
        items = items[:limit]
    calibration = calibration or load_calibration(settings.critic_calibration)
    task = get_task(settings.task)
    if embedding_function is None:
        from codi_agents.retrieval._embeddings import default_embedding_function

        embedding_function = default_embedding_function(settings)
    with open_critic(settings, calibration, critic_model) as critic:
        results = asyncio.run(
            _evaluate_and_close(
                items,
                task=task,
                calibration=calibration,
                critic=critic,
                embed=embedding_function,
                parse_retries=settings.max_parse_retries,
                concurrency=concurrency,
            )
        )
    return EvaluationReport(
        file=str(path),
        critic=critic.description,
        judge_weight=critic.judge_weight,
        calibration=calibration.version,
        results=results,
        skipped=skipped,
    )


async def _evaluate_and_close(
    items: Sequence[LabelledItem], *, critic: CriticChoice, **kwargs: Any
) -> list[ItemResult]:
    """`evaluate_items`, then the judge's HTTP connections closed on the loop that opened them."""
    try:
        return await evaluate_items(items, critic=critic, **kwargs)
    finally:
        if critic.model is not None:
            await critic.model.aclose()


def _metrics(results: Sequence[ItemResult]) -> Metrics:
    return Metrics.from_pairs((r.label == "unfaithful", r.rejected) for r in results)
