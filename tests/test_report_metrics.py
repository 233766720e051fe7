"""The report's text measures on hand-made conversations, against values worked out by hand."""

from __future__ import annotations

import pytest

from codi_agents.report._language import Dialogue, LanguageAccumulator, compare, near_duplicate_share
from codi_agents.report._metrics import Reservoir, depends_on_context, distinct_n, question_type, tokens, word_count
from codi_agents.report._schema import Distribution


def test_tokens_and_word_counts() -> None:
    assert tokens("Don't panic, it's 9 am!") == ["don't", "panic", "it's", "9", "am"]
    assert word_count("  ") == 0
    assert word_count("Form PD-7, please.") == 4  # form, pd, 7, please


def test_distinct_n_counts_ngrams_within_each_text() -> None:
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 4 distinct of 6
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat) (cat sat) (the cat) (cat ran) -> 3 distinct of 4
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    # n-grams never cross two texts: ("b", "c") is not a bigram here
    assert distinct_n(["a b", "c"], 2) == 1.0
    assert distinct_n(["a", "b"], 2) is None
    assert distinct_n([], 1) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("What is the fee?", "what"),
        ("how do I renew it?", "how"),
        ("Why was my claim denied?", "why"),
        ("Which form do I need?", "which"),
        ("Whose signature is needed?", "who"),
        ("When is it due?", "when"),
        ("Where do I send it?", "where"),
        ("Is there a late fee?", "yes/no"),
        ("Do veterans pay less?", "yes/no"),
        ("Can you tell me more about it?", "request"),
        ("Tell me about deferment", "request"),
        ("I would like to know about the fees.", "request"),
        ("If I move, what do I do?", "what"),
        ("okay. and if my visit is extended what should I do?", "what"),
        ("Hi, I have a license from another country and a learner permit, can I drive?", "yes/no"),
        ("And the details?", "other question"),
        ("Thanks, that is all I needed.", "closing"),
        ("I am a veteran.", "statement"),
        ("Yes", "statement"),
        ("what happens after that", "what"),
    ],
)
def test_question_types(text: str, kind: str) -> None:
    assert question_type(text) == kind


@pytest.mark.parametrize(
    ("text", "depends"),
    [
        ("What about students?", True),  # elliptical opener
        ("And the details?", True),
        ("Can you tell me more about it?", True),  # pronoun pointing back
        ("Why?", True),  # a question of one word
        ("As you said, the fee must be paid in person. By when exactly?", True),
        ("How much does the road test cost?", False),
        ("What is the fee for a new license?", False),
        ("Thanks!", False),  # short, but a closing, not a question
        ("", False),
    ],
)
def test_dependence_cues(text: str, depends: bool) -> None:
    assert depends_on_context(text) is depends


def test_language_measures_of_two_hand_made_conversations() -> None:
    accumulator = LanguageAccumulator("hand-made")
    accumulator.add(
        Dialogue(
            user=["What is the fee?", "And for students?", "Thanks!"],
            assistant=["The fee is 10 dollars.", "Students pay 5 dollars.", "You are welcome."],
            depends_by_checks=[False, True, False],
        )
    )
    accumulator.add(
        Dialogue(
            user=["How do I renew my license?", "Is it free?", "How do I renew my license?"],
            assistant=["Online.", "Yes.", "Online."],
            depends_by_checks=[False, False, False],
            flagged_near_duplicate=True,
        )
    )
    stats = accumulator.result()
    assert stats.conversations == 2 and stats.user_turns == 6 and stats.assistant_turns == 6
    assert stats.user_turns_per_conversation == {3: 2}
    assert stats.user_words == {1: 1, 3: 2, 4: 1, 6: 2}  # 4, 3, 1 | 6, 3, 6 words
    assert stats.user_words_summary.median == 3.5 and stats.user_words_summary.mean == pytest.approx(23 / 6)
    assert stats.question_types == {"what": 1, "how": 2, "yes/no": 1, "other question": 1, "closing": 1}
    # later user turns: "And for students?" (yes), "Thanks!" (no), "Is it free?" (yes, `it`), the repeat (no)
    assert stats.later_user_turns == 4 and stats.dependent_share == 0.5
    assert stats.dependent_by_checks_share == 0.25  # 1 of the 4 later turns
    assert stats.repeated_question_share == pytest.approx(1 / 6)
    # user unigrams: 23 tokens, 16 distinct (what is the fee and for students thanks how do i renew my license it free)
    assert stats.distinct["user-1"] == pytest.approx(16 / 23)
    # assistant unigrams: the fee is 10 dollars | students pay 5 dollars | you are welcome | online | yes | online
    # -> 15 tokens; `dollars` and `online` repeat -> 13 distinct
    assert stats.distinct["assistant-1"] == pytest.approx(13 / 15)
    assert stats.flagged_near_duplicate_share == 0.5
    assert stats.near_duplicate_share == 0.0


def test_comparison_measures_distinct_n_on_samples_of_the_same_size() -> None:
    large = LanguageAccumulator("large")
    for index in range(40):
        large.add(Dialogue(user=[f"What is form {index}?"], assistant=["It is a form."]))
    small = LanguageAccumulator("small")
    for text in ("Why?", "How long does it take?", "Who signs it?"):
        small.add(Dialogue(user=[text], assistant=["Soon."]))
    synthetic, reference = compare(large, small)
    assert synthetic.distinct_sample_turns == reference.distinct_sample_turns == 3
    assert synthetic.near_duplicate_sample == reference.near_duplicate_sample == 3
    assert synthetic.user_turns == 40, "counts stay exact; only distinct-n and near-duplicates are sampled"
    # three sampled "what is form N" questions: 12 unigrams; what, is, form repeat -> 3 + 3 numbers distinct
    assert synthetic.distinct["user-1"] == pytest.approx(6 / 12)


def test_near_duplicate_share_finds_copies_and_not_strangers() -> None:
    texts = [
        "how do i renew my driver license online in new york state",
        "how do i renew my driver license online in new york state",
        "what documents prove my identity when i apply for a social security card",
    ]
    assert near_duplicate_share(texts) == pytest.approx(2 / 3)
    assert near_duplicate_share(texts[1:]) == 0.0
    assert near_duplicate_share(texts[:1]) is None


def test_distribution_quantiles_interpolate_like_numpy() -> None:
    summary = Distribution.of([4, 1, 3, 2])
    assert (summary.count, summary.min, summary.max, summary.mean) == (4, 1, 4, 2.5)
    assert summary.median == 2.5 and summary.p25 == 1.75 and summary.p90 == pytest.approx(3.7)
    assert Distribution.of_counts({1: 2, 5: 1}).median == 1
    assert Distribution.of([]).count == 0 and Distribution.of([]).median is None


def test_reservoir_keeps_everything_below_capacity_and_a_fixed_size_sample_above() -> None:
    small: Reservoir[int] = Reservoir(10)
    for item in range(5):
        small.add(item)
    assert small.items == [0, 1, 2, 3, 4] and small.complete
    first: Reservoir[int] = Reservoir(3, seed=1)
    second: Reservoir[int] = Reservoir(3, seed=1)
    for item in range(1000):
        first.add(item)
        second.add(item)
    assert len(first.items) == 3 and first.seen == 1000 and not first.complete
    assert first.items == second.items, "seeded: the same stream gives the same sample"
    assert max(first.items) > 2, "later items get in"
