"""The critic: cheap grounding signals, an LLM judge, and calibrated rules that decide what is kept."""

from codi_agents.critic.assess import Assessment, assess_exchange
from codi_agents.critic.calibration import Calibration, load_calibration
from codi_agents.critic.decision import grounded_decision, grounded_user_check
from codi_agents.critic.inputs import CriticInputs
from codi_agents.critic.judge import GroundedJudgement
from codi_agents.critic.user_turns import LinkRealisation, link_realisation

__all__ = [
    "Assessment",
    "Calibration",
    "CriticInputs",
    "GroundedJudgement",
    "LinkRealisation",
    "assess_exchange",
    "grounded_decision",
    "grounded_user_check",
    "link_realisation",
    "load_calibration",
]
