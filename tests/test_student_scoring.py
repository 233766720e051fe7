"""Scoring a student's reply: SQuAD-normalised token metrics against hand-worked values, abstention both ways,
BLEU on a tiny case, and the grouping by turn position and domain."""

from __future__ import annotations

import pytest

from codi_agents.student import (
    abstains,
    corpus_bleu,
    exact_match,
    normalize_answer,
    score_reply,
    summarize,
    token_f1,
    token_recall,
)
from codi_agents.student._eval import TurnResult, looping


def test_normalisation_lowers_and_drops_punctuation_articles_and_extra_spaces() -> None:
    assert normalize_answer("  The  Card, an ID & a Photo!  ") == "card id photo"


def test_token_f1_recall_and_exact_match_on_a_hand_worked_example() -> None:
    # prediction tokens: bring photo id ; reference tokens: bring photo id and proof of address (7)
    prediction, reference = "Bring a photo ID.", "Bring a photo ID and a proof of address"
    assert token_recall(prediction, reference) == pytest.approx(3 / 7)
    # precision 3/3, recall 3/7 -> F1 = 2 * 1 * 3/7 / (1 + 3/7) = 0.6
    assert token_f1(prediction, reference) == pytest.approx(0.6)
    assert exact_match(prediction, reference) == 0.0
    assert exact_match("the photo ID", "Photo id.") == 1.0


def test_token_counts_are_clipped_by_multiplicity() -> None:
    # "yes yes yes" vs "yes": one shared token; precision 1/3, recall 1 -> F1 0.5
    assert token_f1("yes yes yes", "yes") == pytest.approx(0.5)
    assert token_f1("", "") == 1.0
    assert token_f1("something", "") == 0.0


def test_the_best_reference_counts() -> None:
    score = score_reply("It opens in June.", ["The pool closes on Labor Day.", "It opens in June"])
    assert score.em == 1.0
    assert score.f1 == 1.0
    assert score.recall == 1.0


def test_unanswerable_turn_is_right_only_when_the_reply_abstains() -> None:
    right = score_reply("The document does not say who designed it.", ["CANNOTANSWER"], unanswerable=True)
    wrong = score_reply("It was designed by Frank Lloyd Wright.", ["CANNOTANSWER"], unanswerable=True)
    assert (right.f1, right.em, right.recall, right.abstained) == (1.0, 1.0, 1.0, True)
    assert (wrong.f1, wrong.em, wrong.recall, wrong.abstained) == (0.0, 0.0, 0.0, False)


def test_abstaining_on_an_answerable_turn_scores_zero_even_with_overlapping_words() -> None:
    score = score_reply("I cannot find how many books you can borrow.", ["You can borrow twenty books."])
    assert score.abstained
    assert score.f1 == 0.0


def test_abstention_detection() -> None:
    assert abstains("Sorry, the passages don't mention that.")
    assert abstains("There is no information about fees.")
    assert not abstains("Late fees were abolished in 2021.")


def test_corpus_bleu_on_a_tiny_case() -> None:
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert corpus_bleu(["completely unrelated words here"], ["the cat sat on the mat"]) == pytest.approx(0.0)
    assert corpus_bleu([], []) is None


def test_looping_replies_are_detected() -> None:
    assert looping("la femme de France, la femme de France, la femme de France, la femme de France")
    assert not looping("You can renew your card online or at the desk of any branch after three years.")


def _result(id: str, position: str, domain: str, f1: float, unanswerable: bool = False) -> TurnResult:
    return TurnResult(
        id=id, conv_id=id, domain=domain, position=position, unanswerable=unanswerable, question="q",
        references=["a b"], reply="a b" if f1 == 1.0 else "c", passage_ids=[], f1=f1, em=f1, recall=f1,
        abstained=False, flags=[], seconds=0.1,
    )  # fmt: skip


def test_summary_groups_overall_by_position_and_by_domain() -> None:
    rows = summarize(
        [_result("1", "first", "dmv", 1.0), _result("2", "later", "dmv", 0.0), _result("3", "later", "va", 0.5)]
    )
    by_group = {row.group: row for row in rows}
    assert list(by_group) == ["overall", "first turn", "later turns", "domain: dmv", "domain: va"]
    assert by_group["overall"].f1 == pytest.approx(0.5)
    assert by_group["first turn"].turns == 1
    assert by_group["later turns"].f1 == pytest.approx(0.25)
    assert by_group["domain: dmv"].bleu is not None
