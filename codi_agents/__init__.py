"""codi: document-grounded conversation synthesis for distilling conversational skill into small models.

The public API is small:

- `simulate(doc, persona)` / `asimulate(...)`: one conversation, as a `Conversation` record;
- `run(corpus, out)` / `arun(...)` / `iter_conversations(...)`: a batch run over a corpus (`codi run`);
- `Session`: shared models and index for many conversations;
- `register_task(Task(...))`: add a conversational task;
- `load_settings`, `load_persona`, `load_flow`, `load_document`: the building blocks, validated.

The exception tree is in `codi_agents.errors`; plug-in tasks find their building blocks in `codi_agents.tasks`;
`codi_agents.export`, `codi_agents.report` and `codi_agents.testing` (test doubles) are public too. Every
module whose name starts with `_` is private.
"""

import gc as _gc

_collecting = _gc.isenabled()
_gc.disable()  # importing codi makes ~200k long-lived objects (LangGraph, LangChain, Chroma): collections
try:  # in between would walk them all and find no garbage (about 0.25 s of a 3.3 s start-up)
    from codi_agents._record import Conversation
    from codi_agents._version import __version__
    from codi_agents.batch import arun, iter_conversations, run
    from codi_agents.config import Settings, load_settings
    from codi_agents.errors import CodiError, RunError, UserError
    from codi_agents.inputs._documents import Document, load_document
    from codi_agents.inputs._flows import FlowGraph, load_flow
    from codi_agents.inputs._personas import Persona, load_persona
    from codi_agents.simulation._session import Session
    from codi_agents.simulation._simulate import asimulate, simulate
    from codi_agents.tasks import Prompts, Task, get_task, register_task
finally:
    if _collecting:
        _gc.enable()

__all__ = [
    "CodiError",
    "Conversation",
    "Document",
    "FlowGraph",
    "Persona",
    "Prompts",
    "RunError",
    "Session",
    "Settings",
    "Task",
    "UserError",
    "__version__",
    "arun",
    "asimulate",
    "get_task",
    "iter_conversations",
    "load_document",
    "load_flow",
    "load_persona",
    "load_settings",
    "register_task",
    "run",
    "simulate",
]
