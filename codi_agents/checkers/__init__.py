"""Trained checkers shipped with codi: a faithfulness cross-encoder and a document-injection detector.

Both are small int8 ONNX models (truncated all-MiniLM-L6-v2) run on ONNX Runtime, loaded on first use; their
training code is under `training/checkers/` in the repository and their model cards under `models/`.
"""

from codi_agents.checkers.faithfulness import FaithfulnessChecker, ReplyScore
from codi_agents.checkers.injection import InjectionDetector, InjectionScore

__all__ = ["FaithfulnessChecker", "InjectionDetector", "InjectionScore", "ReplyScore"]
