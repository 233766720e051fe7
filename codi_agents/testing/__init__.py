"""Test doubles shipped with codi, so that users' tests need no network and no keys.

- `ScriptedChatModel`: a chat model that replies from a script, with tools and structured output.
- `HashingEmbeddingFunction`: deterministic bag-of-words embeddings, registered with Chroma.
- `scripted_models()`: user, assistant and critic models that always produce an accepted conversation.
- `FakeOpenAIServer`: a real OpenAI-compatible HTTP server on 127.0.0.1 with latency and injected `Faults`.
"""

from codi_agents.testing._chat import ScriptedChatModel, ScriptExhaustedError
from codi_agents.testing._embeddings import HashingEmbeddingFunction
from codi_agents.testing._scripted import approving_judgement, scripted_assistant, scripted_models, scripted_user
from codi_agents.testing._server import FakeOpenAIServer, Faults

__all__ = [
    "FakeOpenAIServer",
    "Faults",
    "HashingEmbeddingFunction",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "approving_judgement",
    "scripted_assistant",
    "scripted_models",
    "scripted_user",
]
