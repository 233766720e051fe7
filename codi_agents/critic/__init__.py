"""The runtime critic: cheap grounding signals, the calibration that weighs them, and the assessment of a turn.

A task's own rules and judge live in its folder (`codi_agents.tasks.grounded_qa`, `...support`); the
offline measurement of the critic lives in `codi_agents.evaluation`.
"""

from codi_agents.critic._assess import Assessment, assess_exchange
from codi_agents.critic._calibration import Calibration, load_calibration
from codi_agents.critic._inputs import CriticInputs
from codi_agents.critic._user_turns import LinkRealisation, link_realisation

__all__ = [
    "Assessment",
    "Calibration",
    "CriticInputs",
    "LinkRealisation",
    "assess_exchange",
    "link_realisation",
    "load_calibration",
]
