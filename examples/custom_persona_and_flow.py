"""Write your own persona and conversation-flow graph, and simulate a conversation with them.

    python examples/custom_persona_and_flow.py

A persona says who the simulated user is; a flow graph is a Markov chain over "links" (the kind
of question asked each turn) that steers the conversation. Both are usually TOML files that you
keep next to your data (`personas/*.toml`, `graphs/*.toml`); here the persona is built in code and
the flow is written as TOML, to show both ways. Either is validated when loaded: a wrong field
or probabilities that do not sum to 1 raise an error naming the file and the field.
Runs offline on the embedded default model when no endpoint is configured.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents import Conversation, Persona, load_flow, simulate
from codi_agents.display import print_conversation
from codi_agents.llm._models import ModelsArgument

DOCS = Path(__file__).parent / "docs"

# A persona in code. The same fields, as `key = value` lines, make a `personas/<name>.toml` file.
VETERAN = Persona(
    name="returning_veteran",
    description="A veteran who left the army last month and wants to start a degree in the autumn.",
    goals=["find out whether the GI Bill covers the degree", "know which documents to prepare"],
    expertise="knows military paperwork well; new to education benefits",
    style="direct and practical; short questions, one at a time",
)

# A flow graph as TOML: start with an overview question, then follow-ups with pronouns ("it",
# "that"), a yes/no check, maybe a question the page cannot answer, and a closing.
FLOW_TOML = """
name = "benefit_check"
description = "Check eligibility for a benefit, then how to apply."
min_turns = 3
max_turns = 5

[start]
overview = 1.0

[links.overview]
instruction = "Ask what the benefit described in the document is and who can get it."
phenomena = ["self-contained question"]
next = { follow_up = 0.6, yes_no = 0.4 }

[links.follow_up]
instruction = "Ask a follow-up about what was just said, referring to it with a pronoun such as it or that."
assistant_guidance = "Resolve what the pronoun refers to, then answer from the passages."
phenomena = ["coreference"]
next = { yes_no = 0.4, not_covered = 0.2, closing = 0.4 }

[links.yes_no]
instruction = "Ask a yes-or-no question about your own case that the document settles."
assistant_guidance = "Start with yes or no, then give the supporting detail from the passages."
phenomena = ["polar question"]
next = { follow_up = 0.4, not_covered = 0.2, closing = 0.4 }

[links.not_covered]
kind = "unanswerable"
instruction = "Ask something close to the subject that the document does NOT answer."
assistant_guidance = "If the passages do not hold the answer, say that the document does not say."
phenomena = ["abstention"]
next = { closing = 1.0 }

[links.closing]
kind = "closing"
instruction = "End the conversation: thank the assistant. Do not ask anything new."
phenomena = ["closing"]
"""


def main(models: ModelsArgument = None, embedding_function: EmbeddingFunction[Documents] | None = None) -> Conversation:
    """Simulate one conversation with the custom persona and flow; print it."""
    with tempfile.TemporaryDirectory() as folder:
        flow_file = Path(folder) / "benefit_check.toml"
        flow_file.write_text(FLOW_TOML, encoding="utf-8")
        flow = load_flow(flow_file)  # validated here: a broken file raises FlowError naming file and field

    print(f"flow {flow.name!r}: {len(flow.links)} links; this seed's path: {' -> '.join(flow.sample_path(3))}")
    conversation = simulate(
        DOCS / "va_apply_gi_bill.md",
        VETERAN,  # a Persona object, a persona name, or a .toml path
        flow=flow,  # a FlowGraph object, a flow name, or a .toml path
        seed=3,
        models=models,
        embedding_function=embedding_function,
    )
    print_conversation(conversation)
    return conversation


if __name__ == "__main__":
    main()
