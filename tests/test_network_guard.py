"""The test-wide guard: a connection to anything but loopback fails at once, loopback still works."""

from __future__ import annotations

import socket

import pytest

from codi_agents.testing import FakeOpenAIServer


def test_a_connection_to_a_public_address_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(RuntimeError, match="loopback"):
        sock.connect(("93.184.216.34", 443))


def test_the_openai_client_cannot_reach_a_remote_host() -> None:
    import httpx

    with pytest.raises((RuntimeError, httpx.ConnectError), match="loopback"):
        httpx.get("http://93.184.216.34/", timeout=2)


def test_loopback_servers_still_answer() -> None:
    import httpx

    with FakeOpenAIServer() as server:
        reply = httpx.get(f"{server.base_url}/models", timeout=5)
    assert reply.status_code == 200
    assert [entry["id"] for entry in reply.json()["data"]] == [server.model]
