"""Conversation-flow graphs: shipped files load, sampling is deterministic and follows the chain."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from codi_agents import load_flow
from codi_agents.errors import FlowError
from codi_agents.inputs._flows import END, available_flows
from codi_agents.inputs._resources import data_dir

REQUIRED_PHENOMENA = {"coreference", "ellipsis", "clarification request", "topic shift", "abstention", "closing"}


def test_every_shipped_flow_loads_and_samples_within_bounds() -> None:
    flows = available_flows()
    assert {"grounded_qa", "factoid_short", "deep_dive"} <= set(flows)
    for name in flows:
        flow = load_flow(name)
        for seed in range(200):
            path = flow.sample_path(seed)
            assert flow.min_turns <= len(path) <= flow.max_turns, (name, seed, path)
            assert path[0] in flow.start
            assert all(link in flow.links for link in path)


def test_default_flow_has_the_links_grounded_qa_needs() -> None:
    flow = load_flow("grounded_qa")
    assert len(flow.links) >= 10
    phenomena = {p for link in flow.links.values() for p in link.phenomena}
    assert phenomena >= REQUIRED_PHENOMENA
    assert any(link.kind == "unanswerable" for link in flow.links.values())
    assert any(link.kind == "closing" for link in flow.links.values())


def test_sampling_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    flow = load_flow("grounded_qa")
    assert flow.sample_path(42) == flow.sample_path(42)
    assert len({tuple(flow.sample_path(seed)) for seed in range(50)}) > 30


def test_transition_frequencies_match_the_graph() -> None:
    """Over 10,000 samples with the turn bounds out of the way, each transition's frequency is within 0.02."""
    flow = load_flow("grounded_qa").model_copy(update={"min_turns": 1, "max_turns": 10_000})
    counts: dict[str, Counter[str]] = {name: Counter() for name in flow.links}
    for seed in range(10_000):
        path = flow.sample_path(seed)
        for current, following in zip(path, [*path[1:], END], strict=True):
            if flow.links[current].next:
                counts[current][following] += 1
    tolerance = 0.02
    for name, link in flow.links.items():
        total = sum(counts[name].values())
        if total < 2000:
            continue
        for target, probability in link.next.items():
            observed = counts[name][target] / total
            assert abs(observed - probability) <= tolerance, (name, target, observed, probability)


def _write(tmp_path: Path, text: str, name: str = "broken.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = (data_dir("graphs") / "factoid_short.toml").read_text()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("closing = 0.4 }", "closing = 0.3 }", 1),
            "links.factual_followup.next: probabilities sum to 0.9",
        ),
        (lambda t: t.replace("elliptical_followup = 0.3", "elipticall = 0.3", 1), "unknown link(s) elipticall"),
        (
            lambda t: t.replace(
                'instruction = "Ask a short, self-contained question about one fact in the document."\n', "", 1
            ),
            "links.opening_question.instruction: this field is required",
        ),
        (lambda t: t.replace("max_turns = 5", "max_turns = 1", 1), "min_turns (2) is larger than max_turns (1)"),
        (lambda t: t + "\n[links.unanswerable.oops\n", "not valid TOML"),
        (
            lambda t: (
                t.replace("next = { factual_followup = 0.4, closing = 0.6 }", "next = { factual_followup = 1.0 }")
                .replace(
                    "next = { elliptical_followup = 0.25, coreference_followup = 0.25, unanswerable = 0.1, closing = 0.4 }",
                    "next = { elliptical_followup = 0.5, coreference_followup = 0.5 }",
                )
                .replace(
                    "next = { factual_followup = 0.3, elliptical_followup = 0.2, unanswerable = 0.1, closing = 0.4 }",
                    "next = { factual_followup = 0.5, elliptical_followup = 0.5 }",
                )
                .replace(
                    "next = { factual_followup = 0.35, coreference_followup = 0.15, unanswerable = 0.1, closing = 0.4 }",
                    "next = { factual_followup = 0.5, coreference_followup = 0.5 }",
                )
            ),
            "the end cannot be reached",
        ),
    ],
)
def test_broken_flow_files_name_the_file_and_the_field(tmp_path: Path, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, edit(GOOD))
    with pytest.raises(FlowError) as caught:
        load_flow(path)
    message = str(caught.value)
    assert str(path) in message
    assert expected in message


def test_unknown_flow_name_lists_the_available_ones() -> None:
    with pytest.raises(
        FlowError, match=r"Unknown flow graph 'nope'\. Available: deep_dive, factoid_short, grounded_qa"
    ):
        load_flow("nope")


def test_missing_flow_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="file not found"):
        load_flow(tmp_path / "absent.toml")
