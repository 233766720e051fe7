"""The named training runs: which data, which split, how long. Every reported number names its run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from training.checkers.common import TOKENIZER, load_text_module
from training.checkers.data import (
    Example,
    attack_shingles,
    faithfulness_splits,
    injection_split,
    injection_windows,
)


@dataclass(frozen=True)
class RunConfig:
    """One training run."""

    name: str
    task: str
    """`faith` (pairs) or `inject` (single windows)."""
    layers: int = 4
    epochs: int = 2
    max_steps: int = 0
    batch_size: int = 16
    lr: float = 5e-5
    seed: int = 13
    batch_seed: int = 0
    """Seed of the batch order and dropout when not 0 (`seed` still fixes the head's initialisation and the data):
    runs that differ only in it start from the same weights, so their weights can be averaged."""
    threads: int = 1
    exclude: tuple[str, ...] = ("halueval_dialogue",)
    """Faithfulness sources not used at all (HaluEval dialogue: OpenDialKG's licence may be non-commercial)."""
    held_out: tuple[str, ...] = ()
    """Faithfulness sources kept out of training, to measure transfer."""
    cap_pairs: dict[str, int] = field(default_factory=lambda: {"halueval_qa": 3000})
    window_tokens: int = 128
    synthetic: bool = True
    """Injection: add the generated attacks of `training.checkers.synthetic` to training."""
    all_families: bool = False
    """Injection: train on every attack family (the final model) instead of holding some out."""
    synthetic_tasks: int = 0
    """Injection: bare task requests (and as many ordinary help-page imperatives) added by `synthetic.py`."""
    offtopic: int = 0
    """Injection: off-topic questions inserted in documents (and as many negatives), from `offtopic.py`."""
    cue_words: int = 0
    """Injection: benign windows with a generated ordinary cue-word sentence (`cuewords.py`)."""
    standalone: float = 0.0
    """Injection: share of the `offtopic` negatives that are questions of the pool on their own."""
    soup: tuple[str, ...] = ()
    """Average the `final.pt` weights of these runs (same base, same split) instead of training."""
    run_passages: int = 0
    """Injection: how many run-time windows of the passages of four shared documents in five to add as negatives
    (`passages.py`; more than there are takes them all); records built on the fifth stay out of training."""
    held_fifths: int = 1
    """Injection with `run_passages`: how many fifths of the shared documents stay out of training (`passages.py`).
    With 2, the second fifth is a held-out set whose mistakes were never looked at while choosing the data."""
    benign_text: int = 0
    """Injection: reported questions and Wikipedia windows (this many of each) and package documentation as
    negatives (`benign_text.py`)."""
    perturb: int = 0
    """Faithfulness: pairs of a human-labelled training reply and its edited unfaithful twin (`perturb.py`)."""
    matched_qa_ratio: float = 0.0
    """Faithfulness: when not 0, add the HaluEval QA pairs whose answers' word counts are within this ratio
    (`data.length_matched_pairs`), training only."""
    init_from: str = ""
    """Start from another run's `final.pt` instead of the base model."""
    checkpoint_every: int = 200


HUMAN_LABELLED_ONLY = ("halueval_dialogue", "halueval_qa")
"""`exclude` for training on the human-labelled sources only: HaluEval QA teaches a length shortcut (its right
answers are short spans, its hallucinations long sentences)."""

PASSAGES_2FIFTHS = RunConfig(
    "inject-passages-2fifths",
    "inject",
    epochs=2,
    offtopic=900,
    standalone=0.15,
    threads=2,
    run_passages=100_000,
    held_fifths=2,
)

FAITH6_HUMAN3 = RunConfig(
    "faith6-human3",
    "faith",
    layers=6,
    epochs=3,
    lr=5e-5,
    threads=2,
    exclude=HUMAN_LABELLED_ONLY,
    checkpoint_every=100,
)
FAITH6_PERTURB = replace(FAITH6_HUMAN3, name="faith6-perturb", perturb=1000)
FAITH6_HALUQA = replace(FAITH6_HUMAN3, name="faith6-haluqa", matched_qa_ratio=1.5)
FAITH6_SEEDS = ("faith6-human3", "faith6-human3-b2", "faith6-human3-b3", "faith6-human3-b4", "faith6-human3-b5")
"""faith6-human3 and four runs of it with `batch_seed` 2 to 5."""

RUNS = {
    run.name: run
    for run in (
        RunConfig("faith-xsource", "faith", held_out=("q2_wow", "faithdial_audit_gold", "faithdial_audit_models")),
        RunConfig("faith-final", "faith", max_steps=1100, threads=2),
        # HaluEval QA teaches a shortcut (its right answers are short spans, its hallucinations long sentences):
        # continue faith-final on the human-labelled sources only.
        RunConfig(
            "faith-human",
            "faith",
            epochs=1,
            max_steps=300,
            lr=3e-5,
            threads=2,
            exclude=HUMAN_LABELLED_ONLY,
            init_from="faith-final",
            checkpoint_every=50,
        ),
        RunConfig(
            "faith-human2",
            "faith",
            epochs=1,
            lr=2e-5,
            threads=2,
            exclude=HUMAN_LABELLED_ONLY,
            init_from="faith-human",
            checkpoint_every=50,
        ),
        # Six layers (the whole MiniLM), the same chain: all sources with HaluEval QA capped, then human-labelled only.
        RunConfig("faith6-final", "faith", layers=6, max_steps=1100, threads=1),
        RunConfig(
            "faith6-human",
            "faith",
            layers=6,
            epochs=1,
            lr=3e-5,
            threads=1,
            exclude=HUMAN_LABELLED_ONLY,
            init_from="faith6-final",
            checkpoint_every=50,
        ),
        # The whole MiniLM trained from the base on the human-labelled sources only, three epochs, on a quiet machine
        # (every earlier run was cut short by load; HaluEval QA left out from the start for its length shortcut).
        FAITH6_HUMAN3,
        # faith6-human3 plus 1,000 minimally edited unfaithful twins of its faithful training replies (swapped names
        # and words, negations, numbers, unsupported additions): it accepted most unfaithful Q² replies, which
        # differ from the evidence in one detail.
        FAITH6_PERTURB,
        # Every twin the edits can make (about 2,400 pairs) instead of 1,000.
        replace(FAITH6_PERTURB, name="faith6-perturb-all", perturb=100_000),
        # faith6-human3 with other batch orders and dropout (same initial weights, same data), and the averages of
        # their weights: one run's noise (about 0.03 per source) was the size of every effect measured on 2026-12-04.
        *(
            replace(FAITH6_HUMAN3, name=name, batch_seed=seed, threads=1)
            for seed, name in enumerate(FAITH6_SEEDS[1:], start=2)
        ),
        replace(FAITH6_HUMAN3, name="faith6-soup-seeds", soup=FAITH6_SEEDS[:3]),
        replace(FAITH6_HUMAN3, name="faith6-soup-seeds-perturb", soup=(*FAITH6_SEEDS[:3], "faith6-perturb")),
        replace(FAITH6_HUMAN3, name="faith6-soup-seeds5", soup=FAITH6_SEEDS),
        # The weights of faith6-perturb and faith6-human3 (retrained) averaged: same base, same split.
        replace(FAITH6_HUMAN3, name="faith6-soup-perturb", soup=("faith6-human3", "faith6-perturb")),
        # The recipe plus HaluEval QA without its length shortcut (pairs of similar answer lengths), three draws.
        replace(FAITH6_HALUQA, threads=1),
        replace(FAITH6_HALUQA, name="faith6-haluqa-b2", batch_seed=2, threads=1),
        replace(FAITH6_HALUQA, name="faith6-haluqa-b3", batch_seed=3, threads=1),
        RunConfig("faith-tiny", "faith", max_steps=6, held_out=("q2_wow",)),
        RunConfig("inject-heldout", "inject", epochs=1),
        RunConfig("inject-final", "inject", epochs=1, all_families=True),
        # inject-heldout plus bare task requests without an addressee (the held-out BIPIA text families were missed).
        # Not shipped: recall on unseen families fell (0.726 -> 0.623) and false alarms rose (see the injection card).
        RunConfig("inject-tasks", "inject", epochs=1, synthetic_tasks=600),
        # inject-heldout plus off-topic questions from real dialogues inserted in documents, with on-topic sentences
        # of the same document and off-topic statements as negatives (training/checkers/offtopic.py).
        RunConfig("inject-offtopic", "inject", epochs=1, offtopic=900),
        # Fewer off-topic requests, a fifth of their negatives questions on their own (flagged standalone questions
        # were most of inject-offtopic's false alarms on cue-word text).
        RunConfig("inject-offtopic2", "inject", epochs=1, offtopic=600, standalone=0.25, threads=2),
        RunConfig("inject-offtopic3", "inject", epochs=1, offtopic=900, standalone=0.15, threads=2),
        # inject-offtopic3 plus ordinary sentences with cue words ("ignore the reminder if you already paid") as
        # negatives: the off-topic runs flagged notices that tell the reader to ignore an earlier letter.
        # inject-offtopic3 for two epochs: it lost two hand-made instructions addressed to the model that
        # inject-heldout caught; a second pass over the addressed ones (synthetic and public) may keep both kinds.
        RunConfig("inject-offtopic5", "inject", epochs=2, offtopic=900, standalone=0.15, threads=2),
        # inject-offtopic5 plus 2,000 windows of whole run-time passages as negatives, documents held out
        # (inject-offtopic5 flagged 3.8 % of Doc2Dial passages: FAQ questions and procedural imperatives).
        RunConfig("inject-passages", "inject", epochs=2, offtopic=900, standalone=0.15, threads=2, run_passages=2000),
        # Every window of the training documents' passages (about 4,500) instead of 2,000.
        RunConfig(
            "inject-passages-all", "inject", epochs=2, offtopic=900, standalone=0.15, threads=2, run_passages=100_000
        ),
        # inject-passages-all with two fifths of the shared documents held out (the second never inspected), the
        # control for inject-wider: that plus narratives quoting questions, Wikipedia paragraphs and package
        # documentation as negatives.
        PASSAGES_2FIFTHS,
        replace(PASSAGES_2FIFTHS, name="inject-wider", benign_text=1200),
        # The weights of inject-wider and its control averaged (same base, same split).
        RunConfig("inject-soup-wider", "inject", soup=("inject-passages-2fifths", "inject-wider"), held_fifths=2),
        RunConfig("inject-offtopic4", "inject", epochs=1, offtopic=900, standalone=0.15, cue_words=400, threads=2),
        # The weights of inject-offtopic and inject-offtopic3 averaged (a "model soup": both fine-tuned from the same
        # base on the same split): between the first's recall and the second's fewer false alarms.
        RunConfig("inject-soup13", "inject", soup=("inject-offtopic", "inject-offtopic3")),
        RunConfig("inject-soup123", "inject", soup=("inject-offtopic", "inject-offtopic2", "inject-offtopic3")),
        RunConfig("inject-tiny", "inject", max_steps=6),
    )
}


def build_examples(config: RunConfig) -> dict[str, list[Example]]:
    """Splits for a run: `train`, and the evaluation splits (names start with `dev` or `heldout`)."""
    text = load_text_module()
    if config.task == "faith":
        return faithfulness_splits(
            text.PairLayout(),
            config.exclude,
            config.held_out,
            config.cap_pairs,
            config.seed,
            config.perturb,
            config.matched_qa_ratio,
        )
    tokenizer = text.load_tokenizer(str(TOKENIZER))
    train, test, _ = injection_split(config.seed, all_families=config.all_families)
    attack = attack_shingles(train + test)
    if config.run_passages:
        from training.checkers.passages import on_held_out_document

        train = [record for record in train if not on_held_out_document(record, config.held_fifths)]
    examples, _ = injection_windows(train, tokenizer, config.window_tokens, attack)
    if config.synthetic:
        from training.checkers.synthetic import synthetic_windows

        benign = [e for e in examples if e.label == 0]
        examples += synthetic_windows(benign, config.seed, tasks=config.synthetic_tasks)
        if config.offtopic:
            from training.checkers.offtopic import offtopic_windows

            examples += offtopic_windows(benign, config.seed, config.offtopic, config.standalone)
        if config.run_passages:
            from training.checkers.passages import passage_windows

            examples += passage_windows(
                tokenizer, config.window_tokens, config.run_passages, config.seed, config.held_fifths
            )
        if config.cue_words:
            from training.checkers.cuewords import cue_word_windows

            examples += cue_word_windows(benign, config.seed, config.cue_words)
        if config.benign_text:
            from training.checkers.benign_text import benign_text_windows
            from training.checkers.offtopic import questions_used

            skip = questions_used(config.offtopic, config.standalone)
            examples += benign_text_windows(
                benign, tokenizer, config.window_tokens, config.benign_text, config.seed, skip
            )
    return {"train": examples, "test_records": test}  # type: ignore[dict-item]


def encode_examples(config: RunConfig, examples: list[Example]) -> list[tuple[list[int], list[int]]]:
    """Token ids as the run time builds them."""
    text = load_text_module()
    tokenizer = text.load_tokenizer(str(TOKENIZER))
    encoded: list[tuple[list[int], list[int]]]
    if config.task == "faith":
        items = [(e.evidence, e.context, e.claim) for e in examples]
        encoded = text.encode_pairs(tokenizer, items, text.PairLayout())
    else:
        encoded = text.encode_single(tokenizer, [e.evidence for e in examples], config.window_tokens)
    return encoded


def describe(config: RunConfig) -> dict[str, Any]:
    """The run's settings, for model cards."""
    return dict(config.__dict__)
