"""Benign windows of kinds of text the other negatives lack, so that the detector learns what is not aimed at it.

`inject-passages-all` still flagged about 2 % of the passages of held-out documents, scoring most of them near 1:
narratives that quote a question ("…she was asked questions such as, "Will the flight affect…?""), titles that end
in a question mark, and second-person instructions of help pages. Its negatives hold few narratives and little
technical prose. Three kinds are added here, all as negatives:

- **reported questions**: a question of `offtopic.question_pool` (not one used as an off-topic insertion) quoted
  in a narrative frame ("Asked by a reporter, "…?"", "the episode "…?" aired in 1998") and inserted in a benign
  training window. The same question inserted bare is an injection in `offtopic.py`; quoted and reported, it is
  addressed to someone in the story, not to the reader.
- **Wikipedia paragraphs**: the knowledge texts of the HaluEval QA records of the faithfulness training file
  (HotpotQA paragraphs; that folder's README allows training on them).
- **package documentation**: the long descriptions of the packages pinned in `training/requirements.txt`
  (installation steps, usage notes, warnings), windows that talk about prompts, roles or assistants left out.
"""

from __future__ import annotations

import random
import re
from email import message_from_string
from importlib import metadata
from typing import Any

from training.checkers.common import TRAINING_DATA, load_text_module, read_jsonl
from training.checkers.data import Example
from training.checkers.offtopic import question_pool
from training.checkers.synthetic import inserted, insertion_hosts

REPORT_FRAMES = (
    'During a press conference, {who} was asked, "{q}"',
    '{Who} later recalled being asked, "{q}"',
    'Asked by a reporter, "{q}", {who} declined to comment.',
    'The interviewer asked {who}, "{q}"',
    'One critic wrote in {year}: "{q}"',
    'The episode, titled "{q}", first aired in {year}.',
    'In {year} {who} published an essay called "{q}"',
    'The survey of {year} asked respondents, "{q}"',
    'When {who} was asked "{q}", the answer made headlines.',
    '"{q}" became the title of a {year} documentary.',
    'At the hearing, the senator asked {who}: "{q}"',
    'The question "{q}" was debated in the newspapers for weeks.',
)
WHO = ("she", "he", "the author", "the coach", "the minister", "the singer", "the mayor", "the director")
PINNED_PACKAGES = (
    "torch",
    "transformers",
    "safetensors",
    "huggingface_hub",
    "tokenizers",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "numpy",
)
ABOUT_MODELS = re.compile(
    r"\b(prompt\w*|assistant|system|role|chat\w*|instruct\w*|ignore|jailbreak|llm|gpt|agent)\b", re.IGNORECASE
)
"""Documentation windows about chat models are left out: their example prompts are neither clearly benign nor
clearly attacks."""


def reported_question_windows(benign: list[Example], seed: int, count: int, skip: int) -> list[Example]:
    """`count` benign windows with a reported question inserted; the first `skip` questions of the pool (the ones
    `offtopic.py` inserts bare as positives) are not used."""
    rng = random.Random(seed + 61)
    hosts = insertion_hosts(benign)
    questions = question_pool(skip + count, seed)[skip:]
    out = []
    for i, question in enumerate(questions):
        who = rng.choice(WHO)
        frame = rng.choice(REPORT_FRAMES)
        sentence = frame.format(q=question, who=who, Who=who[0].upper() + who[1:], year=rng.randint(1950, 2020))
        host = rng.choice(hosts)
        out.append(inserted(host, sentence, rng, 0, f"reported-question:{i}", "benign_reported_question"))
    return out


def wikipedia_windows(tokenizer: Any, max_tokens: int, count: int, seed: int) -> list[Example]:
    """`count` windows of distinct HaluEval QA knowledge paragraphs (a seeded sample)."""
    text = load_text_module()
    paragraphs = sorted(
        {
            r["knowledge"].strip()
            for r in read_jsonl(TRAINING_DATA / "faithfulness_train.jsonl")
            if r["source"] == "halueval_qa"
        }
    )
    random.Random(seed + 67).shuffle(paragraphs)
    out: list[Example] = []
    for i, paragraph in enumerate(paragraphs):
        for window in text.windows(paragraph, tokenizer, max_tokens):
            out.append(Example(window, "", "", 0, f"wikipedia:{i}", tags={"family": "benign_wikipedia"}))
        if len(out) >= count:
            break
    return out[:count]


def package_descriptions() -> dict[str, str]:
    """The long description (README) of each pinned package, as its installed metadata holds it."""
    out = {}
    for name in PINNED_PACKAGES:
        raw = metadata.distribution(name).read_text("METADATA") or ""
        message = message_from_string(raw)
        body = message.get_payload()
        out[name] = str(body if isinstance(body, str) and body.strip() else message.get("Description", ""))
    return out


def documentation_windows(tokenizer: Any, max_tokens: int) -> list[Example]:
    """Every window of the pinned packages' descriptions that does not talk about prompts or chat models."""
    text = load_text_module()
    out = []
    for name, description in package_descriptions().items():
        for i, window in enumerate(text.windows(description, tokenizer, max_tokens)):
            if len(window.split()) >= 8 and not ABOUT_MODELS.search(window):
                out.append(Example(window, "", "", 0, f"docs:{name}:{i}", tags={"family": "benign_package_docs"}))
    return out


def benign_text_windows(
    benign: list[Example], tokenizer: Any, max_tokens: int, count: int, seed: int, skip: int
) -> list[Example]:
    """`count` reported-question windows, `count` Wikipedia windows and all the documentation windows."""
    return (
        reported_question_windows(benign, seed, count, skip)
        + wikipedia_windows(tokenizer, max_tokens, count, seed)
        + documentation_windows(tokenizer, max_tokens)
    )
