"""Export of the sentence embedder shipped in codi_agents/retrieval/models (see training/README.md)."""
