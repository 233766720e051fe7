"""Simulate one document-grounded conversation and print it.

    python examples/simulate_one.py

With no endpoint configured this runs offline on codi's embedded default: it starts SmolLM2-135M
(llama.cpp) for the user, assistant and critic and uses the MiniLM embeddings, about a minute on a
laptop CPU. To use your own server, set CODI_BASE_URL, CODI_API_KEY and CODI_MODEL (or
OPENAI_BASE_URL / OPENAI_API_KEY) first.
"""

from __future__ import annotations

from pathlib import Path

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents import Conversation, simulate
from codi_agents.display import print_conversation
from codi_agents.llm._models import ModelsArgument

DOCS = Path(__file__).parent / "docs"


def main(models: ModelsArgument = None, embedding_function: EmbeddingFunction[Documents] | None = None) -> Conversation:
    """Simulate and print one conversation; `models` and `embedding_function` default to codi's own."""
    conversation = simulate(
        DOCS / "dmv_surrender_plates.md",  # a .txt, .md, .html or .pdf file, or raw text
        "busy_professional",  # a persona: a name from personas/, or a .toml file
        flow="factoid_short",  # a flow graph: a name from graphs/, or a .toml file
        seed=1,  # the same seed samples the same conversation path
        models=models,  # None: the configured endpoint, else the embedded model
        embedding_function=embedding_function,  # None: the embedded MiniLM embeddings
    )
    print_conversation(conversation)

    # The record keeps everything needed to audit the conversation, and is plain JSON.
    print(f"path: {' -> '.join(conversation.path)}")
    if conversation.accepted:
        print(f"accepted: {conversation.exchanges} exchanges")
    else:  # a rejected conversation is data, not an exception
        print(f"rejected ({conversation.rejection}): {conversation.rejection_reason}")
    for role, usage in conversation.usage.items():
        print(f"{role}: {usage.requests} requests, {usage.input_tokens} tokens in, {usage.output_tokens} out")
    return conversation


if __name__ == "__main__":
    main()
