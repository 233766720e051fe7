"""The run context: live objects every node needs, passed through LangGraph's `Runtime`, never in state."""

from __future__ import annotations

from dataclasses import dataclass

from codi_agents.config._settings import Role, Settings
from codi_agents.critic._calibration import Calibration
from codi_agents.critic._signals import Embed
from codi_agents.llm._calls import RoleModel
from codi_agents.retrieval._index import PassageIndex
from codi_agents.tasks._base import Task


@dataclass(frozen=True)
class SimulationContext:
    """Models per role, the passage index, the task, the settings and the critic's calibration."""

    task: Task
    settings: Settings
    models: dict[Role, RoleModel]
    index: PassageIndex
    calibration: Calibration
    judge_weight: float
    """Weight of the LLM judge against the cheap signals; `calibration.judge_leads(weight)` says whether it decides."""
    embed: Embed | None = None
    """Sentence embeddings for the critic's similarity signals; None disables them."""
    embedded_roles: frozenset[Role] = frozenset()
    """Roles served by the embedded local model (small: prompts and outputs are tightened for it)."""

    def structured_user_turns(self) -> bool:
        """Whether the user simulator answers through the grammar-constrained `UserMessage` schema."""
        if self.settings.user_output == "auto":
            return "user" in self.embedded_roles
        return self.settings.user_output == "structured"
