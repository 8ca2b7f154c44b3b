"""The gateway's hop to the in-process engine is typed: no request header bytes are built for
it and the engine's reply body is never parsed to learn which conversation it names.

A structural test by design: it watches the two functions that would do that work (the header
builder and the chat-body reader) while real turns go through a real gateway, and fails if the
in-process path calls them on the engine's side of the hop.
"""

from __future__ import annotations

import pytest

import proxy._gateway
import proxy._upstream
from common import RawHeaders
from proxy import ROUTE_COOKIE, TokenSigner, Visitor
from tests.integration.conftest import GatewayOpener

FIRST = {"message": "I was rear ended at a red light and my neck hurts"}


async def test_in_process_turns_build_no_header_bytes_and_parse_no_reply(
    open_gateway: GatewayOpener, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[RawHeaders] = []
    parsed: list[bytes] = []
    real_forwarding = proxy._upstream.forwarding_headers
    real_reader = proxy._gateway.session_id_in

    def forwarding_headers(headers: RawHeaders, visitor: Visitor) -> RawHeaders:
        built.append(headers)
        return real_forwarding(headers, visitor)

    def session_id_in(body: bytes) -> str | None:
        parsed.append(body)
        return real_reader(body)

    monkeypatch.setattr(proxy._upstream, "forwarding_headers", forwarding_headers)
    monkeypatch.setattr(proxy._upstream, "session_id_in", session_id_in)
    monkeypatch.setattr(proxy._gateway, "session_id_in", session_id_in)
    async with open_gateway(NEW_CHAT_PERCENT="100", ROUTING_SECRET="seam-secret") as gw:
        first = await gw.post("/api/chat", json=FIRST)
        session_id = first.json()["sessionId"]
        second = await gw.post("/api/chat", json={"message": "Ann Lee", "sessionId": session_id})

    assert first.headers["x-chat-backend"] == second.headers["x-chat-backend"] == "new"
    assert second.json()["sessionId"] == session_id
    assert second.json()["step"] == "phone"
    assert built == []  # no HTTP header bytes for the in-process engine
    replies = {first.content, second.content}
    assert not replies & set(parsed)  # the engine's replies were never parsed
    # ... yet the conversation is pinned to the id the engine chose, from its typed reply
    route = gw.cookies.get(ROUTE_COOKIE)
    assert TokenSigner("seam-secret").read_route_cookie(route) == ("new", session_id)


async def test_the_same_turns_to_legacy_go_through_http(
    open_gateway: GatewayOpener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart: over HTTP the headers are built and the reply read, once each."""
    built: list[RawHeaders] = []
    real_forwarding = proxy._upstream.forwarding_headers

    def forwarding_headers(headers: RawHeaders, visitor: Visitor) -> RawHeaders:
        built.append(headers)
        return real_forwarding(headers, visitor)

    monkeypatch.setattr(proxy._upstream, "forwarding_headers", forwarding_headers)
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        reply = await gw.post("/api/chat", json=FIRST)
    assert reply.headers["x-chat-backend"] == "legacy"
    assert len(built) == 1
