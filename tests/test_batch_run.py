"""Batch runs with scripted models: records, manifest and summary; resume; refused changes; errors; duplicates."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessage
from test_documents import minimal_pdf

from codi_agents import iter_conversations, run
from codi_agents.batch import RunDirectoryError
from codi_agents.checkers._onnx import model_cpu_seconds
from codi_agents.errors import EndpointDownError
from codi_agents.testing import HashingEmbeddingFunction, ScriptedChatModel, scripted_models
from codi_agents.testing._scripted import scripted_user

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "doc2dial_docs.jsonl"
FIXED_FLOW = """
name = "three_steps"
min_turns = 3
max_turns = 3
[start]
opening_question = 1.0
[links.opening_question]
instruction = "Ask your first question about the main subject of the document."
next = { factual_followup = 1.0 }
[links.factual_followup]
instruction = "Ask for one specific fact the document gives."
next = { closing = 1.0 }
[links.closing]
kind = "closing"
instruction = "End the conversation: thank the assistant. Do not ask anything new."
"""


def records(out: Path, name: str = "accepted.jsonl") -> list[dict[str, Any]]:
    path = out / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def all_ids(out: Path) -> list[str]:
    return [record["id"] for name in ("accepted.jsonl", "rejected.jsonl") for record in records(out, name)]


def batch(out: Path, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("models", scripted_models())
    kwargs.setdefault("embedding_function", HashingEmbeddingFunction())
    return run(kwargs.pop("corpus", CORPUS), out, **kwargs)


def status_error(status: int, message: str) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://model.test/v1/chat/completions")
    kind = openai.InternalServerError if status >= 500 else openai.BadRequestError
    return kind(message, response=httpx.Response(status, request=request), body=None)


def test_a_run_writes_records_manifest_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = batch(out, n=8, concurrency=3)
    ids = all_ids(out)
    assert len(ids) == len(set(ids)) == 8
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["planned"] == summary["finished"] == 8
    assert summary["accepted"] == len(records(out)) and summary["accepted"] + summary["rejected"] == 8
    assert sum(group["accepted"] + group["rejected"] for group in summary["by_persona"].values()) == 8
    assert summary["tokens"]["critic"]["requests"] > 0 and summary["cost"] is None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["planned"] == 8 and manifest["config"]["n"] == 8
    assert manifest["models"]["user"].startswith("scripted-user")
    assert manifest["fingerprint"] and manifest["codi_version"]
    index = manifest["index"]  # the shared cache (the test's CODI_CACHE_DIR), not the run directory
    assert index["kind"] == "shared" and index["location"] == str(tmp_path / "codi-cache" / "index" / index["key"])
    assert summary["index"]["location"] == index["location"] and not (out / "index").exists()


def test_the_summary_says_where_the_process_spent_its_cpu(tmp_path: Path) -> None:
    """Start-up, the models (the injection detector scores every passage indexed) and the rest, in CPU seconds."""
    before = model_cpu_seconds().get("injection", 0.0)
    summary = batch(tmp_path / "out", n=4)
    cpu = summary["cpu"]
    assert cpu["process_seconds"] >= cpu["at_start_seconds"] > 0
    assert cpu["model_seconds"]["injection"] > before  # this run's passages were scanned, and counted


def test_resume_skips_what_is_done_and_a_larger_n_extends_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    batch(out, n=4)
    first = set(all_ids(out))
    summary = batch(out, n=9)
    ids = all_ids(out)
    assert len(ids) == len(set(ids)) == 9 and first <= set(ids)
    assert summary["finished_this_session"] == 5 and summary["finished"] == 9
    assert summary["wall_seconds"] > summary["session_wall_seconds"] > 0  # every session's time, and this one's
    again = batch(out, n=9)
    assert again["finished_this_session"] == 0 and len(all_ids(out)) == 9
    assert len(json.loads((out / "manifest.json").read_text())["sessions"]) == 3


def test_a_changed_config_is_refused_with_what_changed_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    batch(out, n=3, top_k=3)
    before = {name: (out / name).read_bytes() for name in ("summary.json", "manifest.json", "accepted.jsonl")}
    with pytest.raises(RunDirectoryError, match=r"changed: setting top_k \(3 -> 5\).*--force"):
        batch(out, n=3, top_k=5)
    assert before == {name: (out / name).read_bytes() for name in before}  # a refusal changes nothing
    config = tmp_path / "run.toml"
    config.write_text("[personas]\ncurious_student = 1\n")
    with pytest.raises(RunDirectoryError, match="persona busy_professional removed"):
        batch(out, n=3, top_k=3, config=config)
    dedup = tmp_path / "dedup.toml"
    dedup.write_text('[dedup]\ndrop = "conversations"\n')
    with pytest.raises(RunDirectoryError, match="changed: dedup drop"):
        batch(out, n=3, top_k=3, config=dedup)
    old = json.loads((out / "manifest.json").read_text())["fingerprint"]
    summary = batch(out, n=3, top_k=5, force=True)
    assert summary["finished"] == 6 and summary["finished_this_session"] == 3
    assert old in json.loads((out / "manifest.json").read_text())["previous_fingerprints"]


def test_starting_over_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    batch(out, n=2)
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        batch(out, n=2, resume=False)
    summary = batch(out, n=2, resume=False, force=True)
    assert summary["finished"] == 2 and len(all_ids(out)) == 2


def test_server_errors_are_logged_not_written_and_redone_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)
    out = tmp_path / "out"

    def user_failing_on_licences(messages: list[BaseMessage]) -> Any:
        if "Top 5 DMV Mistakes" in str(messages[0].content):
            return status_error(503, "upstream overloaded")
        return scripted_user(messages)

    flaky_user = ScriptedChatModel(script=user_failing_on_licences, model_name="scripted-user")  # the same model
    models = {**scripted_models(), "user": flaky_user}
    summary = batch(out, n=10, models=models, user={"max_retries": 1})
    failed = records(out, "errors.jsonl")
    assert summary["errors"] == len(failed) == 2 and summary["finished"] == 8
    assert {record["doc_id"] for record in failed} == {"Top 5 DMV Mistakes and How to Avoid Them#3_0"}
    assert all("did not answer after 2 attempts" in record["message"] for record in failed)
    assert not {record["id"] for record in failed} & set(all_ids(out))
    resumed = batch(out, n=10, user={"max_retries": 1})
    assert resumed["finished"] == 10 and resumed["errors"] == 0
    assert {record["id"] for record in failed} <= set(all_ids(out))


def test_an_endpoint_that_is_down_stops_the_run_with_what_it_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)
    out = tmp_path / "out"
    config = tmp_path / "run.toml"
    config.write_text("[limits]\nendpoint_down_seconds = 0.001\n")
    down = ScriptedChatModel(script=lambda messages: status_error(503, "the GPUs are on fire"))
    with pytest.raises(EndpointDownError, match=r"HTTP 503: the GPUs are on fire"):
        batch(out, n=30, concurrency=2, config=config, models={**scripted_models(), "user": down})
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and "GPUs are on fire" in summary["stopped_because"]
    assert summary["finished"] == 0 and summary["errors"] < 30
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"


def test_a_rejected_request_makes_a_rejected_conversation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    refusing = ScriptedChatModel(script=lambda messages: status_error(400, "context length exceeded"))
    summary = batch(out, n=2, models={**scripted_models(), "assistant": refusing})
    assert summary["rejected"] == 2 and summary["rejection_reasons"] == [{"reason": "request_rejected", "count": 2}]
    for groups in (summary["by_persona"], summary["by_flow"]):  # each group says why its conversations failed
        assert sum(reason["count"] for group in groups.values() for reason in group["top_rejection_reasons"]) == 2
        assert {reason["reason"] for group in groups.values() for reason in group["top_rejection_reasons"]} == {
            "request_rejected"
        }
    assert all("context length exceeded" in record["rejection_reason"] for record in records(out, "rejected.jsonl"))


def test_near_duplicates_are_flagged_counted_and_dropped_on_request(tmp_path: Path) -> None:
    (tmp_path / "three_steps.toml").write_text(FIXED_FLOW)
    config = tmp_path / "run.toml"
    config.write_text(
        f'per_document = 4\n[personas]\ncurious_student = 1\n[flows]\n"{tmp_path / "three_steps.toml"}" = 1\n'
    )
    corpus = tmp_path / "one.jsonl"
    corpus.write_text(CORPUS.read_text().splitlines()[0] + "\n")
    flagged = batch(tmp_path / "flagged", corpus=corpus, config=config)
    accepted = records(tmp_path / "flagged")
    assert len(accepted) == 4
    assert sum("near_duplicate" in record["flags"] for record in accepted) == 3
    assert flagged["near_duplicates"]["by_flag"]["near_duplicate"] == 3
    config.write_text(config.read_text() + '[dedup]\ndrop = "conversations"\n')
    dropped = batch(tmp_path / "dropped", corpus=corpus, config=config)
    assert dropped["accepted"] == 1 and dropped["near_duplicates"]["dropped"] == 3
    moved = records(tmp_path / "dropped", "rejected.jsonl")
    assert len(moved) == 3 and all("dropped" in record["flags"] for record in moved)
    assert all(record["rejection_reason"].startswith("near-duplicate of conversation") for record in moved)
    assert dropped["rejection_reasons"] == [{"reason": "near_duplicate", "count": 3}]


def test_breaking_out_of_the_iterator_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def take_three() -> list[str]:
        taken = []
        async with iter_conversations(
            CORPUS,
            out,
            n=12,
            concurrency=2,
            models=scripted_models(0.01),
            embedding_function=HashingEmbeddingFunction(),
        ) as conversations:
            async for conversation in conversations:
                taken.append(conversation.id)
                if len(taken) == 3:
                    break
        return taken

    taken = asyncio.run(take_three())
    assert set(taken) <= set(all_ids(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    summary = batch(out, n=12)
    ids = all_ids(out)
    assert len(ids) == len(set(ids)) == 12 and summary["status"] == "completed"


def test_folder_corpus_with_html_pdf_and_unreadable_files(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "recycling.html").write_text(
        "<html><head><title>Recycling</title></head><body><p>Glass bottles and jars go in the green bin. "
        "Paper and cardboard go in the blue bin, flattened. Batteries must be taken to a collection point."
        "</p></body></html>"
    )
    (folder / "form.pdf").write_bytes(minimal_pdf("Submit the renewal form within 10 days of the notice."))
    (folder / "empty.md").write_text("")
    (folder / "blob.txt").write_bytes(b"\x00\x00\x00")
    summary = batch(tmp_path / "out", corpus=folder, per_document=1)
    assert summary["finished"] == 2
    assert {Path(item["source"]).name for item in summary["documents"]["skipped"]} == {"empty.md", "blob.txt"}
    assert {
        record["doc_id"] for name in ("accepted.jsonl", "rejected.jsonl") for record in records(tmp_path / "out", name)
    } == {
        "recycling.html",
        "form.pdf",
    }


def test_truncated_and_badly_encoded_documents_are_counted_named_and_noted_on_their_conversations(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    text = json.loads(CORPUS.read_text().splitlines()[0])["text"]
    (folder / "long.md").write_text(text * 20)
    (folder / "latin1.txt").write_bytes(text[:1500].encode() + " caf\xe9 ".encode("latin-1") + text[1500:3000].encode())
    summary = batch(tmp_path / "out", corpus=folder, per_document=1, max_document_bytes=len(text.encode()) * 2)
    documents = summary["documents"]
    assert documents["truncated_count"] == 1 and [Path(name).name for name in documents["truncated"]] == ["long.md"]
    assert documents["replaced_bytes"] == 1
    assert [Path(name).name for name in documents["with_replaced_bytes"]] == ["latin1.txt"]
    notes = {
        record["doc_id"]: record["doc_notes"]
        for name in ("accepted.jsonl", "rejected.jsonl")
        for record in records(tmp_path / "out", name)
    }
    assert notes == {"long.md": {"truncated_at_bytes": len(text.encode()) * 2}, "latin1.txt": {"decoding_errors": 1}}


def test_hostile_document_ids_never_reach_a_path(tmp_path: Path) -> None:
    hostile = ["../../etc/x", "/abs/path", "a" * 5000, "nul\x00and\nnewline"]
    corpus = tmp_path / "hostile.jsonl"
    text = json.loads(CORPUS.read_text().splitlines()[0])["text"]
    corpus.write_text("".join(json.dumps({"id": ident, "text": f"{ident[:10]} {text}"}) + "\n" for ident in hostile))
    out = tmp_path / "out"
    before = {path for path in tmp_path.parent.rglob("*")}
    batch(out, corpus=corpus, per_document=1)
    created = {path for path in tmp_path.parent.rglob("*")} - before
    cache = tmp_path / "codi-cache"  # the shared index cache: entries are named by a hash, never by an id
    assert created and all(path in (out, cache) or out in path.parents or cache in path.parents for path in created)
    assert {record["doc_id"] for name in ("accepted.jsonl", "rejected.jsonl") for record in records(out, name)} == set(
        hostile
    )


def test_prices_give_a_cost_estimate(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[prices.assistant]\ninput = 0.5\noutput = 1.5\n[prices.critic]\ninput = 1.0\n")
    summary = batch(tmp_path / "out", n=2, config=config)
    assistant, critic = summary["tokens"]["assistant"], summary["tokens"]["critic"]
    expected = (assistant["input_tokens"] * 0.5 + assistant["output_tokens"] * 1.5 + critic["input_tokens"]) / 1000
    assert summary["cost"]["total"] == pytest.approx(expected, rel=1e-4)
    assert set(summary["cost"]["by_role"]) == {"assistant", "critic"}


def test_a_run_raises_the_collector_threshold_while_it_lasts_and_restores_it(tmp_path: Path) -> None:
    async def thresholds_seen(config: Path | None) -> set[tuple[int, int, int]]:
        seen = set()
        batch = iter_conversations(
            CORPUS, None, config=config, n=3, models=scripted_models(), embedding_function=HashingEmbeddingFunction()
        )
        async with batch:
            async for _ in batch:
                seen.add(gc.get_threshold())
        return seen

    before = gc.get_threshold()
    assert asyncio.run(thresholds_seen(None)) == {(50_000, 50, 100)}
    assert gc.get_threshold() == before
    lower = tmp_path / "run.toml"
    lower.write_text("[limits]\ngc_threshold = 1000\n")
    assert asyncio.run(thresholds_seen(lower)) == {(1000, 50, 100)}
    assert gc.get_threshold() == before
    alone = tmp_path / "alone.toml"
    alone.write_text("[limits]\ngc_threshold = 0\n")
    assert asyncio.run(thresholds_seen(alone)) == {before}


def test_overlapping_runs_restore_the_collector_only_when_the_last_one_ends() -> None:
    async def overlapping() -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        first, second = (
            iter_conversations(
                CORPUS, None, n=2, models=scripted_models(), embedding_function=HashingEmbeddingFunction()
            )
            for _ in range(2)
        )
        await first.__aenter__()
        await anext(aiter(first))
        await second.__aenter__()
        await anext(aiter(second))  # both runs have started
        async for _ in first:
            pass
        await first.__aexit__(None, None, None)
        after_first = gc.get_threshold()  # the first run ended; the second one still lasts
        async for _ in second:
            pass
        await second.__aexit__(None, None, None)
        return after_first, gc.get_threshold()

    before = gc.get_threshold()
    while_one_lasts, after_both = asyncio.run(overlapping())
    assert while_one_lasts == (50_000, 50, 100)
    assert after_both == before
