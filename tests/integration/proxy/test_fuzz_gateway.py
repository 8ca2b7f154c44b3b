"""Property-based fuzzing of the real gateway process, straight and through a real nginx in
gateway mode, both backends live (NEW_CHAT_PERCENT=50): 5,000 requests of any method, body
(JSON of any shape, deep nesting, bytes) and header mix (cookies forged or not, content types,
forwarded addresses, override tokens). A property run found 119 gateway 500s in 8,000
requests (issue 17). Properties: no 5xx the gateway made itself, and the gateway's request
counter grew by exactly the number of requests sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.metrics import sample_sum
from tests.support.nginx import Nginx
from tests.support.processes import ChatctlProcess, PhpLegacy, free_port

pytestmark = pytest.mark.slow

BATCH = 25
EXAMPLES = 200
"""5,000 requests: 200 examples of 25 (one example of 5,000 is more than Hypothesis draws)."""
SAFE_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
"""Header values httpx will send (visible ASCII, no edge spaces)."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
chat_bodies = st.fixed_dictionaries(
    {"message": st.one_of(st.text(max_size=300), json_values)},
    optional={
        "sessionId": st.one_of(
            st.none(), st.from_regex(r"[A-Za-z0-9_-]{6,40}", fullmatch=True), json_values
        )
    },
).map(lambda body: json.dumps(body).encode())
bodies = st.one_of(
    chat_bodies,
    chat_bodies,
    st.binary(max_size=200),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 3000).map(lambda depth: b'{"message":' + b"[" * depth + b"]" * depth + b"}"),
    st.just(b""),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded", "x/y"]
        ),
        "cookie": st.one_of(
            SAFE_TEXT.map(lambda v: f"chat_sid={v}"),
            SAFE_TEXT.map(lambda v: f"chat_route={v}"),
            SAFE_TEXT.map(lambda v: f"chat_route=n.{v}.{v}; chat_sid={v}.{v}"),
            SAFE_TEXT,
        ),
        "x-forwarded-for": st.one_of(st.ip_addresses().map(str), SAFE_TEXT),
        "x-chat-override": SAFE_TEXT,
        "x-shadow-request": st.sampled_from(["1", "0", "yes"]),
        "x-shadow-auth": SAFE_TEXT,
    },
)
requests = st.tuples(
    st.sampled_from(["POST"] * 8 + ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]),
    bodies,
    headers,
    st.booleans(),  # through nginx, or straight to the gateway
)


@pytest.fixture
def fuzz_target(
    gateway_env: dict[str, str], legacy: PhpLegacy, tmp_path: Path
) -> Iterator[tuple[int, int]]:
    """(gateway port, nginx port)."""
    port = free_port()
    env = gateway_env | {"PORT": str(port), "NEW_CHAT_PERCENT": "50", "LOG_STDOUT": "false"}
    gateway = ChatctlProcess(["serve"], env, port)
    nginx = Nginx(
        tmp_path,
        env
        | {"GATEWAY_UPSTREAM": f"127.0.0.1:{port}", "LEGACY_UPSTREAM": f"127.0.0.1:{legacy.port}"},
        "gateway",
    )
    try:
        yield port, nginx.port
    finally:
        nginx.stop()
        gateway.stop()


async def _send_all(
    batch: list[tuple[str, bytes, dict[str, str], bool]], gateway: int, nginx: int
) -> tuple[list[tuple[int, str | None, bytes]], float]:
    """Each request (8 at a time), and how much the gateway's request counter grew."""
    limit = asyncio.Semaphore(8)

    async def one(client: httpx.AsyncClient, request: tuple[str, bytes, dict[str, str], bool]):  # type: ignore[no-untyped-def]
        method, body, extra, via_nginx = request
        port = nginx if via_nginx else gateway
        async with limit:
            reply = await client.request(
                method, f"http://127.0.0.1:{port}/api/chat", content=body, headers=extra
            )
        return reply.status_code, reply.headers.get("x-chat-backend"), reply.content[:200]

    async with httpx.AsyncClient(timeout=20) as client:
        metrics = f"http://127.0.0.1:{gateway}/metrics"
        before = sample_sum((await client.get(metrics)).text, "gateway_requests_total{")
        replies = await asyncio.gather(*(one(client, request) for request in batch))
        after = sample_sum((await client.get(metrics)).text, "gateway_requests_total{")
    return list(replies), after - before


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)  # fmt: skip
@given(batch=st.lists(requests, min_size=BATCH, max_size=BATCH))
def test_no_5xx_of_the_gateways_own_and_every_request_counted(
    fuzz_target: tuple[int, int], batch: list[tuple[str, bytes, dict[str, str], bool]]
) -> None:
    gateway, nginx = fuzz_target
    replies, counted = asyncio.run(_send_all(batch, gateway, nginx))
    own_5xx = [reply for reply in replies if reply[0] >= 500 and reply[1] is None]
    assert own_5xx == []  # a backend's 5xx is labelled with it (X-Chat-Backend); none here
    assert counted == len(batch)
    statuses = {status for status, _, _ in replies}
    assert statuses <= {200, 204, 400, 403, 404, 405, 413, 415, 422, 429, 503}, replies
