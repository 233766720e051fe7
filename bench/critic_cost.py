"""What one critic pass costs on the embedded default: signals only (cold and warm cache), and with the 135M judge.

    python bench/critic_cost.py [--data ../shared/data/faithfulness_begin_200.jsonl] [--items 60] [--judge-items 5]

- cold: every item brings new passages (as in `codi eval-critic`): passage sentences are embedded;
- warm: the same passages judged again with new replies (as in simulation, where every turn and
  every regenerated reply of a conversation is judged against passages seen before): passage
  sentences come from the cache, only the reply is embedded;
- judge: the full pass with SmolLM2-135M as judge (judge weight forced to 1), started here via
  llama.cpp; skipped with `--judge-items 0`.
Prints a table of median and 90th-percentile milliseconds per assistant turn.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from pathlib import Path

from codi_agents import Settings
from codi_agents.critic import load_calibration
from codi_agents.critic._assess import assess_exchange
from codi_agents.evaluation._evaluate import open_critic
from codi_agents.evaluation._items import item_context
from codi_agents.evaluation._labelled import LabelledItem, read_labelled
from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
from codi_agents.tasks import get_task

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "faithfulness_begin_200.jsonl"


async def _timed_passes(
    items: list[LabelledItem],
    judge_weight: float,
    embed: MiniLMEmbeddingFunction,
    responses: list[str] | None = None,
) -> list[float]:
    """Milliseconds of one critic pass per item, with the judge chosen as `codi eval-critic` chooses it."""
    task = get_task("grounded_qa")
    calibration = load_calibration()
    settings = Settings(judge_weight=judge_weight)
    times = []
    with open_critic(settings, calibration) as critic:
        for index, item in enumerate(items):
            context = item_context(item, task)
            if responses is not None:
                context = dataclasses.replace(context, answer=responses[index])
            started = time.perf_counter()
            await assess_exchange(
                context,
                critic=critic.model,
                calibration=calibration,
                judge_weight=critic.judge_weight,
                embed=embed,
                parse_retries=settings.max_parse_retries,
            )
            times.append((time.perf_counter() - started) * 1000)
    return times


def timed_passes(
    items: list[LabelledItem],
    judge_weight: float,
    embed: MiniLMEmbeddingFunction,
    responses: list[str] | None = None,
) -> list[float]:
    """`_timed_passes` in one event loop (the judge's HTTP client lives in it)."""
    return asyncio.run(_timed_passes(items, judge_weight, embed, responses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--judge-items", type=int, default=5)
    args = parser.parse_args()
    items, _ = read_labelled(args.data)
    items = items[: args.items]
    embed = MiniLMEmbeddingFunction()
    embed(["warm up the model"])
    rows = [("signals only, new passages (cold)", timed_passes(items, 0.0, embed))]
    # new reply text (upper-cased: the uncased MiniLM reads it the same, the cache has not seen it)
    other_replies = [items[(i + 1) % len(items)].response.upper() for i in range(len(items))]
    rows.append(("signals only, passages seen before (warm)", timed_passes(items, 0.0, embed, other_replies)))
    if args.judge_items:
        judged = items[: args.judge_items]
        rows.append(("with the 135M judge (embedded llama.cpp)", timed_passes(judged, 1.0, embed)))
    print(f"{'critic pass per assistant turn':45} {'turns':>6} {'median ms':>10} {'p90 ms':>10}")
    for name, times in rows:
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
        print(f"{name:45} {len(times):6d} {statistics.median(times):10.1f} {p90:10.1f}")


if __name__ == "__main__":
    main()
