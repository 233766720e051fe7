"""One conversation: the LangGraph state, nodes, routers and wiring, the prompts, and the Session that runs them."""
