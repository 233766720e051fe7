"""Talking to chat models: role models with retries and limits, failure handling, the embedded llama.cpp server."""
