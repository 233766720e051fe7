"""Close the loop: fine-tune a small student on codi's conversations and score it against human ones.

    from codi_agents.student import eval_student, train, TrainOptions
    train(Path("runs/dmv"), Path("students/dmv"), TrainOptions(max_steps=200))
    outcome = eval_student("students/dmv", Path("conversations_dev.jsonl"), Path("eval/dmv.jsonl"))

`eval_student` runs an endpoint, the embedded model, or a local Hugging Face model (with its LoRA
adapter) over every human agent turn, with codi's retrieval and training prompt, and writes scored
results as it goes; `train` is TRL's SFTTrainer with LoRA and an assistant-only loss (extra `train`).
"""

from codi_agents.student._api import eval_student, train
from codi_agents.student._backends import EMBEDDED, ENDPOINT, PACKAGED, ChatModelStudent, StudentModel, open_student
from codi_agents.student._eval import EvalOutcome, TurnResult
from codi_agents.student._references import ReferenceSet, ReferenceTurn, read_reference_turns
from codi_agents.student._scoring import (
    abstains,
    corpus_bleu,
    exact_match,
    normalize_answer,
    score_reply,
    token_f1,
    token_recall,
)
from codi_agents.student._summary import GroupScore, summarize, summary_document, summary_figure, write_plot
from codi_agents.student._train import TrainOptions, TrainResult

__all__ = [
    "EMBEDDED",
    "ENDPOINT",
    "PACKAGED",
    "ChatModelStudent",
    "EvalOutcome",
    "GroupScore",
    "ReferenceSet",
    "ReferenceTurn",
    "StudentModel",
    "TrainOptions",
    "TrainResult",
    "TurnResult",
    "abstains",
    "corpus_bleu",
    "eval_student",
    "exact_match",
    "normalize_answer",
    "open_student",
    "read_reference_turns",
    "score_reply",
    "summarize",
    "summary_document",
    "summary_figure",
    "token_f1",
    "token_recall",
    "train",
    "write_plot",
]
