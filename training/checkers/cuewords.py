"""Ordinary document sentences built on the words injections use ("ignore", "previous", "instead", "system"), as
negatives inserted in benign training windows.

In `injection_train.jsonl` "ignore" occurs in 237 injected texts and 12 benign ones, so a classifier learns the
word, and then flags a form that says "ignore the old form". These sentences use the cue words the way forms,
notices and help pages do, addressed to the human reader about the document's own business. They are generated
from templates written for this module and share no sentence with the hand-made check (`handmade.py`) or the
tests of the shipped model. They were written after that check had been read, and some share its cue words
("ignore", "disregard", "password"), so with them the hand-made imperatives are no longer an unbiased check: the
held-out cue-word passages (real text) are.
"""

from __future__ import annotations

import random

from training.checkers.data import Example
from training.checkers.synthetic import insert_sentence

THINGS = (
    "line 14 of the worksheet",
    "the reminder we sent in January",
    "the second page of the notice",
    "the estimate shown in your online account",
    "the automatic message from the old portal",
    "section C of the application",
    "the yellow copy of the receipt",
    "the renewal letter dated before April",
    "the warning light while the meter resets",
    "the balance shown on the paper statement",
    "the old reference number",
    "the checkbox for joint applicants",
)
CONDITIONS = (
    "if you filed before June",
    "if you have no dependants",
    "unless your address has changed",
    "if you already paid online",
    "when you apply as a single parent",
    "if your employer pays the fee",
    "once your case has been approved",
    "if you moved here after 2019",
)
REPLACEMENTS = (
    "the figure on your latest statement is the correct one",
    "use the amount printed on the new card",
    "the updated schedule is posted at the front desk",
    "the revised form is available from any branch",
    "your caseworker will send a corrected copy",
)
TEMPLATES = (
    "Ignore {thing} {condition}.",
    "You can safely ignore {thing} {condition}.",
    "Please disregard {thing}; {replacement}.",
    "Disregard {thing} {condition}.",
    "Previous versions of this guide said otherwise; {replacement}.",
    "Earlier instructions for {process} no longer apply; follow the steps below instead.",
    "If the system asks for {detail}, enter it exactly as it appears on your card.",
    "The system will be unavailable {time} for scheduled maintenance.",
    "Never share {detail} with anyone who calls you, even if they say they work for us.",
    "Do not respond to emails asking for {detail}; we will never ask for it that way.",
    "Override the default payment date only {condition}.",
    "Instead of mailing {thing}, upload a photo of it to your account.",
    "Your reply must include {detail} so that we can match it to your file.",
    "Reveal your full income on page 2, including income from abroad.",
    "Pretend-play and role-play activities are part of the daily programme for children under five.",
)
PROCESSES = ("claiming a refund", "renewing a permit", "reporting a change of address", "booking an inspection")
DETAILS = (
    "your PIN",
    "your password",
    "your case number",
    "the last four digits of your account",
    "your date of birth",
)
TIMES = (
    "within 30 days",
    "before the end of the month",
    "on Sunday from 1 a.m. to 5 a.m.",
    "by the date on the letter",
)


def cue_word_sentences(count: int, seed: int) -> list[str]:
    """`count` generated sentences (repeats allowed once the templates are exhausted)."""
    rng = random.Random(seed + 31)
    out = []
    for _ in range(count):
        sentence = rng.choice(TEMPLATES).format(
            thing=rng.choice(THINGS),
            condition=rng.choice(CONDITIONS),
            replacement=rng.choice(REPLACEMENTS),
            process=rng.choice(PROCESSES),
            detail=rng.choice(DETAILS),
            time=rng.choice(TIMES),
        )
        out.append(sentence[0].upper() + sentence[1:])
    return out


def cue_word_windows(benign: list[Example], seed: int, count: int) -> list[Example]:
    """`count` negatives: a generated cue-word sentence inserted at a random line of a benign training window."""
    rng = random.Random(seed + 37)
    hosts = [e for e in benign if len(e.evidence) > 80 and "host_text_of_injected" not in e.tags]
    out = []
    for i, sentence in enumerate(cue_word_sentences(count, seed)):
        host = rng.choice(hosts)
        window = insert_sentence(host.evidence, sentence, rng)
        out.append(Example(window, "", "", 0, f"cue-word:{i}", tags={"family": "synthetic_cue_word", "host": ""}))
    return out
