"""Split mode's question from nginx: only a conversation pinned to legacy by a genuine cookie,
claimed by nothing else, is carried by nginx itself; everything else goes through the gateway."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from flags import FlagValues, bucket
from proxy import GATEWAY_UPSTREAM, LEGACY_UPSTREAM, GatewayMetrics, RouteHint, TokenSigner
from tests.support.static_flags import static_flags

SIGNER = TokenSigner("routing-secret")
SESSION = "legacysession0123456789"
LEGACY_PIN = f"chat_route={SIGNER.route_cookie('legacy', SESSION)}"


def hint(values: FlagValues | None = None) -> RouteHint:
    flags = static_flags(values or FlagValues(new_chat_percent=50, testers=("ann",)))
    return RouteHint(flags=flags, signer=SIGNER, metrics=GatewayMetrics(CollectorRegistry()))


def cookie_headers(cookie: str, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"site.example"), (b"cookie", f"a=1; {cookie}".encode()), *extra]


def test_a_conversation_pinned_to_legacy_goes_straight_to_legacy() -> None:
    assert hint().upstream_for(cookie_headers(LEGACY_PIN)) == LEGACY_UPSTREAM


@pytest.mark.parametrize(
    "cookie",
    [
        "",  # a first turn, or a client without cookies (`sessionId` in the body)
        f"chat_route={SIGNER.route_cookie('new', SESSION)}",  # on the new engine
        f"chat_route={TokenSigner('another-secret').route_cookie('legacy', SESSION)}",  # forged
        LEGACY_PIN.replace(SESSION, "someoneelse0123456789"),  # tampered
    ],
    ids=["no cookie", "pinned to new", "forged", "tampered"],
)
def test_anything_but_a_genuine_legacy_pin_goes_through_the_gateway(cookie: str) -> None:
    assert hint().upstream_for(cookie_headers(cookie)) == GATEWAY_UPSTREAM


def test_testers_overrides_go_through_the_gateway() -> None:
    token = SIGNER.override_token("ann", "new", int(time.time()) + 3600)
    as_header = cookie_headers(LEGACY_PIN, (b"x-chat-override", token.encode()))
    as_cookie = cookie_headers(f"{LEGACY_PIN}; chat_override={token}")
    assert hint().upstream_for(as_header) == GATEWAY_UPSTREAM
    assert hint().upstream_for(as_cookie) == GATEWAY_UPSTREAM


def test_shadowed_conversations_go_through_the_gateway() -> None:
    shadow_all = FlagValues(new_chat_percent=50, shadow_percent=100)
    assert hint(shadow_all).upstream_for(cookie_headers(LEGACY_PIN)) == GATEWAY_UPSTREAM
    assert hint(FlagValues(shadow_percent=0)).upstream_for(cookie_headers(LEGACY_PIN)) == (
        LEGACY_UPSTREAM
    )


async def test_the_answer_is_an_empty_204_naming_the_upstream() -> None:
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        raise AssertionError("the hint never reads a body")

    await hint()({"type": "http", "headers": cookie_headers(LEGACY_PIN)}, receive, send)
    assert sent[0] == {
        "type": "http.response.start",
        "status": 204,
        "headers": [(b"x-chat-upstream", b"chat_legacy")],
    }
    assert sent[1] == {"type": "http.response.body", "body": b""}


async def test_every_answer_is_counted_by_upstream() -> None:
    registry = CollectorRegistry()
    route_hint = RouteHint(
        flags=static_flags(FlagValues(new_chat_percent=50)),
        signer=SIGNER,
        metrics=GatewayMetrics(registry),
    )

    async def send(message: dict[str, object]) -> None:
        pass

    for cookie in (LEGACY_PIN, LEGACY_PIN, ""):
        await route_hint({"type": "http", "headers": cookie_headers(cookie)}, None, send)

    def counted(upstream: str) -> float | None:
        return registry.get_sample_value("gateway_route_hints_total", {"upstream": upstream})

    assert (counted(LEGACY_UPSTREAM), counted(GATEWAY_UPSTREAM)) == (2, 1)


def test_a_partial_shadow_share_is_decided_by_each_conversations_own_bucket() -> None:
    """At 50 %, conversations on both sides of the shadow bucket's line: each goes where its own
    id's bucket says (Unleash's normalized hash in the `new-chat-shadow` group)."""
    half = hint(FlagValues(new_chat_percent=50, shadow_percent=50))
    ids = [f"legacysession{n:010d}" for n in range(40)]
    expected = [bucket("new-chat-shadow", i) <= 50 for i in ids]
    assert set(expected) == {True, False}  # both sides of the line
    for session_id, shadowed in zip(ids, expected, strict=True):
        pin = f"chat_route={SIGNER.route_cookie('legacy', session_id)}"
        upstream = half.upstream_for(cookie_headers(pin))
        assert upstream == (GATEWAY_UPSTREAM if shadowed else LEGACY_UPSTREAM), session_id
