"""The runtime critic: cheap grounding signals, the calibration that weighs them, and the assessment of a turn.

This package's surface is what a task's rules build on (`CriticInputs`, `Calibration`, the user-turn
cues); the assessment of an exchange, which runs a task's judge and rules, is
`codi_agents.critic._assess` and is not re-exported here, so that `tasks` -> `critic` stays one way.
A task's own rules and judge live in its folder (`codi_agents.tasks.grounded_qa`, `...support`); the
offline measurement of the critic lives in `codi_agents.evaluation`.
"""

from codi_agents.critic._calibration import Calibration, load_calibration
from codi_agents.critic._inputs import CriticInputs
from codi_agents.critic._user_turns import LinkRealisation, link_realisation

__all__ = [
    "Calibration",
    "CriticInputs",
    "LinkRealisation",
    "link_realisation",
    "load_calibration",
]
