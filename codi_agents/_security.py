"""Defences against hostile input: prompt injection in documents, and leaked secrets.

Documents are untrusted. Their text reaches models only as quoted, labelled data (see the task
prompts); this module finds text inside them that is aimed at a model and hides credentials in
anything codi writes or prints. (User-given ids never become file paths: run files are fixed names.)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codi_agents.checkers import InjectionDetector, InjectionScore

DETECTOR_FLAG = "possible_injection:detector"
"""The flag of a passage the trained injection detector scores at or above its threshold."""

_INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "override_instructions": re.compile(
        # the object must be what a model is given ("all previous instructions", "your rules"), not any
        # instructions ("disregard the instructions on the back of the old form" is ordinary text)
        r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?"
        r"\b(previous|prior|above|earlier|preceding|all|your|system)\b[^.\n]{0,30}?"
        r"\b(instructions?|prompts?|rules|directions|guidelines|directives)\b"
        r"|\b(ignore|disregard|forget)\s+(everything|anything|all)\s+(above|before|else|you were told|said so far)\b",
        re.IGNORECASE,
    ),
    "new_instructions": re.compile(
        r"\b(new|updated|real|actual|secret|hidden)\s+(system\s+)?(instructions?|prompt|directives?)\s*:", re.IGNORECASE
    ),
    "chat_template_marker": re.compile(
        r"<\|(im_start|im_end|system|user|assistant|eot_id|start_header_id|endoftext)\|>"
        r"|\[/?INST\]|<</?SYS>>|^#{2,}\s*(instruction|system|response)\s*:?\s*$",
        re.IGNORECASE | re.MULTILINE,
    ),
    "role_marker": re.compile(
        # a bracketed role tag, or a role label followed by an order: "System: maintenance on Sunday" and
        # "Assistant: Mary Smith" (a staff list) are ordinary lines
        r"^\s*[\[<(](system|assistant|developer)[\]>)]"
        r"|^\s*(system|assistant|developer)\s*(prompt|message|note|instructions?)?\s*:\s*"
        r"(you|ignore|disregard|forget|from now on|new|always|never|do not|don't|respond|reply|answer|say|tell)\b",
        re.IGNORECASE | re.MULTILINE,
    ),
    "tool_call_syntax": re.compile(
        r"<tool_call>|</tool_call>|\"(function_call|tool_calls)\"\s*:|\{\s*\"name\"\s*:\s*\"[^\"]+\"\s*,\s*\"(arguments|parameters)\"",
        re.IGNORECASE,
    ),
    "prompt_exfiltration": re.compile(
        r"\b(reveal|print|show|repeat|output|disclose|leak|tell me)\b[^.\n]{0,30}?"
        r"\b(system prompt|your (system )?(instructions|prompt)|hidden (instructions|prompt)|api key)",
        re.IGNORECASE,
    ),
    "addresses_the_model": re.compile(
        r"\b(you are (now )?(an? )?(ai|large language model|language model|chatbot|llm|assistant)\b"
        r"|\b(ai|llm|chatbot|language model)s?( assistants?| agents?| systems?| models?)?\s+"
        r"(must|should|shall|are instructed to|reading this)\b"
        r"|\bas an? (ai|language model)\b[^.\n]{0,30}\b(must|should|will)\b)",
        re.IGNORECASE,
    ),
    "answer_override": re.compile(
        r"\b(when|if|whenever)\b[^.\n]{0,25}\b(asked about|answering (any )?questions?|summari[sz]ing (this|the)|"
        r"responding to (questions|users))\b[^.\n]{0,60}?\b(always|instead|only|must)\s+"
        r"(say|respond|reply|answer|state|tell|claim|recommend|include)\b",
        re.IGNORECASE,
    ),
}


@cache
def markers_digest() -> str:
    """A hash of the instruction-like patterns: the passage index stores the flags they raise, so it keys on this."""
    patterns = {name: [pattern.pattern, int(pattern.flags)] for name, pattern in _INJECTION_PATTERNS.items()}
    return hashlib.sha256(json.dumps(patterns, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def injection_markers(text: str) -> list[str]:
    """Names of the instruction-like patterns aimed at a model that occur in `text` (empty if none)."""
    return [name for name, pattern in _INJECTION_PATTERNS.items() if pattern.search(text)]


@cache
def injection_detector() -> InjectionDetector:
    """The process-wide trained detector (`codi_agents.checkers`); its ONNX session loads on first use."""
    from codi_agents.checkers import InjectionDetector  # onnxruntime loads only when something is scored

    return InjectionDetector()


def detect_injections(texts: Sequence[str]) -> list[InjectionScore]:
    """The trained detector's verdict on each text, every window of every text in one batched pass."""
    return injection_detector().score_chunks(list(texts)) if texts else []


def injection_flags(text: str, detected: InjectionScore | None = None) -> list[str]:
    """A passage's flags: one per regex marker (the cheap first layer), and `DETECTOR_FLAG` when the model flags it."""
    flags = [f"possible_injection:{marker}" for marker in injection_markers(text)]
    if detected is not None and detected.flagged:
        flags.append(DETECTOR_FLAG)
    return flags


_PIECE_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+|(?=<!--)|(?<=-->)|(?=\[[^\]]{12,}\])|(?<=\])\s")


@lru_cache(maxsize=1024)
def injected_sentences(text: str) -> tuple[str, ...]:
    """The pieces of a passage that carry an instruction to a model: regex matches and the detector's picks.

    Pieces are sentences, lines and asides (HTML comments, bracketed notes), all scored in one batch; the
    detector's verdict is each piece's at its threshold, else the single highest piece of a flagged passage.
    Called only for passages already flagged, so the extra pass costs nothing on clean text.
    """
    pieces = [piece.strip() for piece in _PIECE_BOUNDARY.split(text) if piece and piece.strip()]
    if not pieces:
        return ()
    found = [piece for piece in pieces if injection_markers(piece)]
    detector = injection_detector()
    verdicts = detector.score_chunks(pieces)
    picked = [piece for piece, verdict in zip(pieces, verdicts, strict=True) if verdict.flagged]
    if not picked and detector.score(text).flagged:
        picked = [pieces[max(range(len(pieces)), key=lambda i: verdicts[i].score)]]
    found.extend(piece for piece in picked if piece not in found)
    return tuple(found)


def mask_secret(secret: str) -> str:
    """A stub that identifies a secret without revealing it: `sk-…a1b2` or `***`."""
    if len(secret) < 12:
        return "***"
    return f"{secret[:3]}…{secret[-4:]}"


MIN_REDACTED_CHARS = 8
"""Shorter "keys" (`fake`, `none`, `EMPTY` for local servers) are placeholders, and masking them would
mangle ordinary words that contain them."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret (8 characters or longer) in `text` by its masked stub."""
    for secret in secrets:
        if secret and len(secret) >= MIN_REDACTED_CHARS and secret in text:
            text = text.replace(secret, mask_secret(secret))
    return text
