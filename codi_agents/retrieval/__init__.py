"""Retrieval: the embedded embedding model, the embedding batcher, the Chroma passage index and its server."""
