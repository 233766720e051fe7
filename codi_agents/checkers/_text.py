"""Text handling shared by the checkers at run time and by their training code.

Training (`training/checkers/`) loads this very file, so a model is trained on exactly the windows, evidence
selection and token layout it sees at run time. Only the standard library and `tokenizers` are used here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

CLS_ID = 101
SEP_ID = 102

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this "
    "that these those i you he she we they me him her us them my your his our their not no do does did "
    "have has had can could will would should may might so than then there here what which who whom whose "
    "when where why how about into over also just very more most some any all yes yeah well oh".split()
)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences and lines: lines matter in tables, lists and YAML, sentences in prose."""
    parts = (part.strip() for part in _SENTENCE_END.split(text))
    return [part for part in parts if part]


def content_words(text: str) -> set[str]:
    """Lower-cased words that carry content, for the cheap lexical ranking of evidence sentences."""
    return {word for word in _WORD.findall(text.lower()) if word not in _STOP}


def load_tokenizer(path: str) -> Tokenizer:
    """The WordPiece tokenizer with its own truncation and padding off: the layout is built here."""
    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@dataclass(frozen=True)
class PairLayout:
    """Token budgets of a cross-encoder input `[CLS] evidence [SEP] context [SEP] claim [SEP]`."""

    max_length: int = 112
    """All tokens, specials included."""
    max_context: int = 20
    """Tokens kept from the end of the context (the user's last message); 0 drops it."""
    max_claim: int = 40
    """Tokens kept from the start of the claim (one reply sentence)."""


def evidence_budget_words(layout: PairLayout, context: str, claim: str) -> int:
    """Roughly how many evidence words fit beside this context and claim (about 1.4 tokens a word)."""
    context_tokens = min(round(len(context.split()) * 1.4), layout.max_context)
    claim_tokens = min(round(len(claim.split()) * 1.4), layout.max_claim)
    return max(int((layout.max_length - 4 - context_tokens - claim_tokens) / 1.4), 8)


def select_evidence(passages: Sequence[str], claim: str, budget_words: int) -> str:
    """The passage sentences that share most content words with `claim`, in reading order, within a word budget.

    Cross-encoding every sentence against every passage window costs too much per turn, so one evidence text
    is assembled per claim: sentences ranked by lexical overlap (ties keep reading order), then re-sorted.
    """
    claim_words = content_words(claim)
    sentences = [sentence for passage in passages for sentence in split_sentences(passage)]
    ranked = sorted(
        range(len(sentences)),
        key=lambda i: (-len(claim_words & content_words(sentences[i])), i),
    )
    chosen: list[int] = []
    used = 0
    for index in ranked:
        words = len(sentences[index].split())
        if chosen and used + words > budget_words:
            continue
        chosen.append(index)
        used += words
        if used >= budget_words:
            break
    return " ".join(sentences[i] for i in sorted(chosen))


def encode_pairs(
    tokenizer: Tokenizer,
    items: Sequence[tuple[str, str, str]],
    layout: PairLayout,
) -> list[tuple[list[int], list[int]]]:
    """Token ids and type ids for (evidence, context, claim) triples, truncated to the layout's budgets."""
    texts = [text for item in items for text in item]
    encoded = tokenizer.encode_batch(texts, add_special_tokens=False)
    out: list[tuple[list[int], list[int]]] = []
    for i in range(len(items)):
        evidence, context, claim = (encoded[3 * i + k].ids for k in range(3))
        claim = claim[: layout.max_claim]
        context = context[-layout.max_context :] if layout.max_context else []
        second = ([*context, SEP_ID] if context else []) + [*claim, SEP_ID]
        room = max(layout.max_length - 2 - len(second), 0)
        first = [CLS_ID, *evidence[:room], SEP_ID]
        out.append(([*first, *second], [0] * len(first) + [1] * len(second)))
    return out


def encode_single(tokenizer: Tokenizer, texts: Sequence[str], max_length: int) -> list[tuple[list[int], list[int]]]:
    """Token ids and type ids for single texts (document windows), cut to `max_length` tokens."""
    encoded = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [
        ([CLS_ID, *enc.ids[: max_length - 2], SEP_ID], [0] * (min(len(enc.ids), max_length - 2) + 2)) for enc in encoded
    ]


def windows(text: str, tokenizer: Tokenizer, max_tokens: int) -> list[str]:
    """Consecutive sentences and lines grouped into windows of at most `max_tokens` tokens.

    A long single sentence becomes its own window (and is cut when encoded). Windows do not overlap: the
    detector scores each window, and an instruction split across two still leaves most of it in one.
    """
    sentences = split_sentences(text)
    if not sentences:
        return []
    lengths = [len(enc.ids) for enc in tokenizer.encode_batch(sentences, add_special_tokens=False)]
    out: list[str] = []
    current: list[str] = []
    used = 0
    for sentence, length in zip(sentences, lengths, strict=True):
        if current and used + length > max_tokens - 2:
            out.append("\n".join(current))
            current, used = [], 0
        current.append(sentence)
        used += length
    out.append("\n".join(current))
    return out
