"""One contract, three upstreams: legacy PHP over HTTP, the new engine in-process, and the new
engine as a remote process (`chatctl serve --engine-only`). The gateway treats them alike, so
every case here runs against each of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from common import keys
from newchat import load_settings, provide_services, shadow_key
from proxy import (
    EngineUpstream,
    ForwardRequest,
    HttpUpstream,
    Upstream,
    UpstreamReply,
    UpstreamSettings,
    Visitor,
)
from tests.support.processes import ChatctlProcess, PhpLegacy, RedisServer, free_port

VISITOR = Visitor("203.0.113.9", "http", "203.0.113.9", False, {})
FIRST = b'{"message": "I was rear ended at a red light and my neck hurts"}'


@dataclass
class Backend:
    upstream: Upstream
    has_real_session: Callable[[str], Awaitable[bool]]
    """Whether the backend holds a visitor's (not a shadow) session under this id."""


@pytest.fixture(scope="module")
def remote_engine(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """`chatctl serve --engine-only` on the tests' Redis (no OpenAI, no LeadProsper)."""
    port = free_port()
    env = {
        "REDIS_URL": redis_server.url,
        "SESSION_SECRET": "remote-engine-secret",
        "LOG_FILE": str(tmp_path_factory.mktemp("remote") / "application.log"),
        "PORT": str(port),
        "RATE_LIMIT_PER_MINUTE": "100000",
    }
    process = ChatctlProcess(["serve", "--engine-only"], env, port=port)
    yield f"http://127.0.0.1:{port}/api/chat", env
    process.stop()


@pytest.fixture(params=["legacy", "in-process", "remote"])
async def backend(
    request: pytest.FixtureRequest,
    legacy: PhpLegacy,
    remote_engine: tuple[str, dict[str, str]],
    base_env: dict[str, str],
    redis: Redis,
    outside_http: httpx.AsyncClient,
) -> AsyncIterator[Backend]:
    async def in_redis(session_id: str) -> bool:
        return bool(await redis.exists(keys.session(session_id)))

    async def in_legacy_files(session_id: str) -> bool:
        return (legacy.data_dir / "sessions" / f"{session_id}.json").exists()

    if request.param == "in-process":
        settings = load_settings(base_env | {"RATE_LIMIT_PER_MINUTE": "100000"})
        services = provide_services(settings, redis, outside_http)
        yield Backend(EngineUpstream(services, timeout_seconds=5.0), in_redis)
        return
    url, env = (legacy.url, {}) if request.param == "legacy" else remote_engine
    http = HttpUpstream(
        UpstreamSettings(url=url), shadow_key=shadow_key(load_settings(env).session) if env else ""
    )
    await http.start()
    try:
        yield Backend(http, in_legacy_files if request.param == "legacy" else in_redis)
    finally:
        await http.close()


def _turn(body: bytes, *, shadow: bool = False) -> ForwardRequest:
    return ForwardRequest(
        "POST", b"", [(b"content-type", b"application/json")], body, VISITOR, shadow=shadow
    )


def _json(reply: UpstreamReply) -> dict[str, object]:
    assert (b"content-type", b"application/json") in [
        (name, value.split(b";")[0]) for name, value in reply.headers
    ]
    decoded = msgspec.json.decode(reply.body)
    assert isinstance(decoded, dict)
    return decoded


async def test_a_turn_names_its_conversation_and_the_next_turn_continues_it(
    backend: Backend,
) -> None:
    first = await backend.upstream.send(_turn(FIRST))
    assert first.status == 200
    body = _json(first)
    assert first.session_id == body["sessionId"]  # read once, where the reply arrived
    assert body["step"] == "name"
    assert any(name == b"set-cookie" for name, _ in first.headers)
    assert first.session_id is not None
    assert await backend.has_real_session(first.session_id)
    second = await backend.upstream.send(
        _turn(msgspec.json.encode({"message": "Ann Lee", "sessionId": first.session_id}))
    )
    assert second.status == 200
    assert second.session_id == first.session_id
    assert _json(second)["step"] == "phone"


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b'{"message": 7}', (400, 422)), (b'{"message": "   "}', 422)],
    ids=["not JSON", "wrong type", "empty message"],
)
async def test_bad_input_is_a_json_4xx_naming_no_conversation(
    backend: Backend, body: bytes, status: int | tuple[int, ...]
) -> None:
    reply = await backend.upstream.send(_turn(body))
    assert reply.status in (status if isinstance(status, tuple) else (status,))
    assert "error" in _json(reply)
    assert reply.session_id is None


async def test_get_answers_health_and_head_answers_without_a_body(
    backend: Backend,
) -> None:
    got = await backend.upstream.send(ForwardRequest("GET", b"", [], b"", VISITOR))
    assert got.status == 200
    assert _json(got)
    head = await backend.upstream.send(ForwardRequest("HEAD", b"", [], b"", VISITOR))
    assert head.status == 200
    assert head.body == b""
    assert got.session_id is None
    assert head.session_id is None


async def test_a_mirrored_turn_touches_no_real_session(backend: Backend) -> None:
    reply = await backend.upstream.send(_turn(FIRST, shadow=True))
    assert reply.status == 200
    assert reply.session_id == _json(reply)["sessionId"]
    assert reply.session_id is not None
    assert not await backend.has_real_session(reply.session_id)
