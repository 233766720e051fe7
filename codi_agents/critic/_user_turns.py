"""The user side: cheap cues of a user turn, and how often planned links were realised across conversations.

A user turn is checked against the link the flow planned for it (a coreference follow-up really
refers back, an elliptical one is really short, a yes/no question is polar, a closing asks
nothing new, ...) and for staying in role (it asks; it never answers itself or talks like the
assistant). `grounded_user_check` in `tasks/grounded_qa/rules.py` turns these cues into a `UserCheck`;
`link_realisation` aggregates the checks recorded in conversations, for reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from codi_agents._record import Conversation
from codi_agents.critic._text import content_words
from codi_agents.inputs._flows import Link

PRONOUNS = frozenset(
    """
    it its they them their theirs he him his she her hers this that these those there such
    """.split()
)
POLAR_STARTS = frozenset(
    """
    is are was were am do does did can could will would should shall has have had may might must isn't
    aren't doesn't don't didn't can't won't wouldn't shouldn't hasn't haven't
    """.split()
)
QUESTION_STARTS = (
    frozenset("what who when where why how which whose whom tell explain describe can could".split()) | POLAR_STARTS
)
CLOSING_WORDS = re.compile(
    r"\b(thanks?|thank you|bye|goodbye|appreciate|that's all|that is all|helpful|perfect|great help"
    r"|have what i need)\b",
    re.IGNORECASE,
)
ASSISTANT_SPEAK = re.compile(
    r"^\s*(sure|certainly|of course|absolutely|according to (the|this)|based on the"
    r"|the (document|passage|text) (says|states|mentions))"
    r"|\bas an ai\b|\bhow (can|may) i (help|assist)\b|\bi'm here to help\b|\bi hope this helps\b",
    re.IGNORECASE,
)
WHY_HOW = frozenset({"why", "how", "explain", "reason", "steps", "process"})
ANSWERS_ITSELF_WORDS = 12
"""Words after the last question mark beyond which the user is answering their own question."""


def user_turn_signals(message: str, link: Link, history: Sequence[str]) -> dict[str, float]:
    """Cheap checks of a user turn: does it ask, does it sound like an assistant, which phenomena it shows.

    `history` holds the earlier messages of the conversation, oldest first.
    """
    del link  # the cues are the same for every link; `grounded_user_check` decides what each link needs
    words = [word.lower() for word in re.findall(r"[A-Za-z']+", message)]
    first = words[0] if words else ""
    trailing = message.rsplit("?", maxsplit=1)[-1] if "?" in message else ""
    own = set(content_words(message))
    recent = set(content_words(" ".join(history[-2:])))
    return {
        "asks": 1.0 if "?" in message or first in QUESTION_STARTS else 0.0,
        "assistant_speak": 1.0 if ASSISTANT_SPEAK.search(message) else 0.0,
        "answers_itself": 1.0 if len(trailing.split()) > ANSWERS_ITSELF_WORDS else 0.0,
        "has_pronoun": 1.0 if PRONOUNS & set(words) else 0.0,
        "words": float(len(words)),
        "polar": 1.0
        if first in POLAR_STARTS or (first in {"and", "so", "but"} and words[1:2] and words[1] in POLAR_STARTS)
        else 0.0,
        "why_how": 1.0 if WHY_HOW & set(words) else 0.0,
        "closing_words": 1.0 if CLOSING_WORDS.search(message) else 0.0,
        "has_history": 1.0 if history else 0.0,
        "history_overlap": round(len(own & recent) / len(own), 4) if own and recent else 0.0,
    }


@dataclass(frozen=True)
class LinkRealisation:
    """How the user turns planned as one link fared under the critic's check."""

    link: str
    turns: int
    """User turns of this link that carry a check."""
    realised: int
    """Of those, turns that realised the link."""
    in_role: int
    """Of those, turns that stayed in role."""

    @property
    def rate(self) -> float:
        """Share of checked turns that realised the link (0 when none were checked)."""
        return self.realised / self.turns if self.turns else 0.0

    @property
    def in_role_rate(self) -> float:
        """Share of checked turns that stayed in role."""
        return self.in_role / self.turns if self.turns else 0.0


def link_realisation(conversations: Iterable[Conversation]) -> dict[str, LinkRealisation]:
    """Per link name, how often its user turns realised it and stayed in role, over every checked user turn.

    Turns of rejected conversations count too (their last user turn is kept with its check);
    user turns without a check (none in records written by codi) are skipped. Sorted by link name.
    """
    counts: dict[str, list[int]] = {}
    for conversation in conversations:
        for turn in conversation.turns:
            if turn.role != "user" or turn.check is None or not turn.link:
                continue
            tally = counts.setdefault(turn.link, [0, 0, 0])
            tally[0] += 1
            tally[1] += int(turn.check.link_realised)
            tally[2] += int(turn.check.in_role)
    return {link: LinkRealisation(link, *counts[link]) for link in sorted(counts)}
