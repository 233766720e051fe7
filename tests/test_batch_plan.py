"""The plan: deterministic for a seed, extended (not reshuffled) by a larger n, weighted, and its ids are the records'."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from codi_agents import Settings, iter_conversations
from codi_agents.batch._plan import Plan, Planned, longest_first
from codi_agents.batch._runner import BatchRun
from codi_agents.config._run_config import load_run_config
from codi_agents.errors import ConfigError
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "doc2dial_docs.jsonl"


def make_plan(tmp_path: Path, config: str = "", **overrides: object) -> Plan:
    path = tmp_path / "run.toml"
    path.write_text(config)
    batch = BatchRun(
        CORPUS,
        None,
        config=load_run_config(path, **overrides),
        settings=Settings(),
        models=scripted_models(),
        embedding_function=HashingEmbeddingFunction(),
    )
    return batch.make_plan()


def ids(plan: Plan) -> list[str]:
    return [item.id for item in plan]


def test_same_config_same_ids_in_the_same_order(tmp_path: Path) -> None:
    first = make_plan(tmp_path, "seed = 3\nn = 12\n")
    again = make_plan(tmp_path, "seed = 3\nn = 12\n")
    assert ids(first) == ids(again)
    assert len(set(ids(first))) == 12
    assert [item.document.id for item in first][:5] == [item.document.id for item in first][5:10]  # round-robin


def test_another_seed_gives_other_conversations(tmp_path: Path) -> None:
    assert set(ids(make_plan(tmp_path, "seed = 3\nn = 12\n"))).isdisjoint(
        ids(make_plan(tmp_path, "seed = 4\nn = 12\n"))
    )


def test_a_larger_n_extends_the_plan_without_changing_its_start(tmp_path: Path) -> None:
    short = ids(make_plan(tmp_path, "n = 7\n"))
    long = ids(make_plan(tmp_path, "n = 20\n"))
    assert long[:7] == short


def test_per_document_and_weights(tmp_path: Path) -> None:
    config = """
per_document = 8
[personas]
curious_student = 3
busy_professional = 1
retiree = 0
[flows]
grounded_qa = 1
factoid_short = 1
"""
    plan = make_plan(tmp_path, config)
    assert len(plan) == 40
    personas = Counter(item.persona.name for item in plan)
    assert set(personas) == {"curious_student", "busy_professional"}
    assert personas["curious_student"] > personas["busy_professional"]
    assert {item.flow.name for item in plan} == {"grounded_qa", "factoid_short"}
    assert Counter(item.document.id for item in plan) == dict.fromkeys([item.document.id for item in plan], 8)


def test_bad_run_configs_are_refused_with_the_field() -> None:
    with pytest.raises(ConfigError, match="either `n`"):
        load_run_config_text("n = 3\nper_document = 2\n")
    with pytest.raises(ConfigError, match="either `n`"):
        load_run_config(None, n=3, per_document=2)
    assert load_run_config_text("per_document = 2\n").planned(5) == 10
    assert load_run_config(Path("run.toml"), n=3).planned(5) == 3  # a flag overrides the file's choice
    with pytest.raises(ConfigError, match="weights must not be negative"):
        load_run_config_text("[personas]\nchild = -1\n")
    with pytest.raises(ConfigError, match="concurrenc"):
        load_run_config_text("concurrency = 0\n")
    with pytest.raises(ConfigError, match="unknown field"):
        load_run_config_text("sed = 3\n")
    with pytest.raises(ConfigError, match=r"num_perm = 16 is too few permutations"):
        BatchRun(CORPUS, None, config=load_run_config(None, dedup={"num_perm": 16}), settings=Settings())


def load_run_config_text(text: str) -> object:
    path = Path("run.toml")
    path.write_text(text)
    return load_run_config(path)


def test_planned_ids_are_the_ids_of_the_records(tmp_path: Path) -> None:
    expected = ids(make_plan(tmp_path, "n = 6\n"))

    async def collect() -> list[str]:
        found = []
        async with iter_conversations(
            CORPUS, tmp_path / "out", n=6, models=scripted_models(), embedding_function=HashingEmbeddingFunction()
        ) as conversations:
            async for conversation in conversations:
                found.append(conversation.id)
        return found

    assert sorted(asyncio.run(collect())) == sorted(expected)


def test_dry_run_shows_the_plan_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codi_agents.cli import main

    out = tmp_path / "out"
    main(["run", str(CORPUS), "--out", str(out), "--n", "6", "--seed", "3", "--dry-run"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "plan: 6 conversations over 5 documents" in printed
    assert "documents: 5 used, 0 skipped" in printed
    assert not out.exists()


def test_the_longest_planned_conversations_start_first_within_the_lookahead(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, n=40)
    lengths = {item.id: len(item.flow.sample_path(item.seed)) for item in plan}
    assert len(set(lengths.values())) > 1  # the flow gives paths of several lengths
    everything = [item.id for item in longest_first(iter(plan), lookahead=100)]
    assert sorted(everything) == sorted(lengths)  # the same conversations, each once
    assert [lengths[i] for i in everything] == sorted(lengths.values(), reverse=True)

    read: list[int] = []

    def streamed() -> Iterator[Planned]:
        for item in plan:
            read.append(item.number)
            yield item

    ordered = longest_first(streamed(), lookahead=4)
    first = next(ordered)
    assert len(read) == 4 and first.number in read  # a streamed plan is read only as far as the window
    assert lengths[first.id] == max(lengths[item.id] for item in list(plan)[:4])
    assert sorted([first.id, *(item.id for item in ordered)]) == sorted(lengths)
