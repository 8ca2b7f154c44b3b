"""What the gateway process answers before its app runs (`proxy._server_protocol`), over raw
sockets to a real `chatctl serve`: malformed HTTP, oversized and slow headers, slow bodies and
too many connections each get the contract's JSON, are counted in `/metrics` and logged."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.metrics import sample_sum
from tests.support.processes import ChatctlProcess, PhpLegacy, free_port

GATEWAY_ANSWERS = 'gateway_requests_total{backend="gateway",status="4xx"}'


@pytest.fixture
def gateway(gateway_env: dict[str, str], tmp_path: Path) -> Iterator[ChatctlProcess]:
    port = free_port()
    env = gateway_env | {
        "PORT": str(port),
        "HTTP_READ_TIMEOUT": "0.5",
        "HTTP_MAX_CONNECTIONS": "6",
        "LOG_STDOUT": "false",
        "LOG_FILE": str(tmp_path / "gateway.log"),
    }
    process = ChatctlProcess(["serve"], env, port)
    yield process
    process.stop()


async def _exchange(port: int, raw: bytes, *, wait: float = 5.0) -> bytes:
    """Sends `raw`, then reads until the gateway closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(wait):
            return await reader.read(-1)
    finally:
        writer.close()


def _json_answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


async def _gateway_4xx(port: int) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        return sample_sum((await client.get(f"http://127.0.0.1:{port}/metrics")).text,
                          GATEWAY_ANSWERS)  # fmt: skip


async def test_malformed_oversized_and_slow_requests_get_counted_json_answers(
    gateway: ChatctlProcess, tmp_path: Path
) -> None:
    port = gateway.port
    assert port is not None
    before = await _gateway_4xx(port)
    malformed = await _exchange(port, b"POST /api/chat HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n")
    huge = await _exchange(
        port, b"GET /api/chat HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 40_000 + b"\r\n"
    )
    # the same in one burst, complete (it passed: a fresh helper), and as 1,000 small headers
    burst = await _exchange(port, b"GET /api/chat HTTP/1.1\r\nHost: x\r\nX-Pad: "
                            + b"a" * 100_000 + b"\r\nConnection: close\r\n\r\n")  # fmt: skip
    many = await _exchange(port, b"GET /api/chat HTTP/1.1\r\nHost: x\r\n"
                           + b"".join(b"X-H%d: %s\r\n" % (n, b"b" * 90) for n in range(1_000))
                           + b"Connection: close\r\n\r\n")  # fmt: skip
    for refused in (burst, many):
        assert _json_answer(refused)[:1] == (431,)
        assert _json_answer(refused)[2]["error"] == "headers_too_large"
    slow_headers = await _exchange(port, b"POST /api/chat HTTP/1.1\r\nHost: x\r\n")
    slow_body = await _exchange(
        port,
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{",
    )
    two_hosts = await _exchange(port, b"GET /api/chat HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    upgrade = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAM\r\n"
    h2c_body = await _exchange(
        port,
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\n" + upgrade + b"Content-Length: 2\r\n\r\n{}",
    )
    async with httpx.AsyncClient(timeout=5) as client:  # curl --http2 on http:// asks this way
        h2c_get = await client.get(
            f"http://127.0.0.1:{port}/healthz",
            headers={"connection": "Upgrade, HTTP2-Settings", "upgrade": "h2c"},
        )
    assert h2c_get.status_code == 200
    silent = await _exchange(port, b"")  # opens, sends nothing: closed, nothing said
    answers = [
        _json_answer(raw) for raw in (malformed, huge, slow_headers, slow_body, two_hosts, h2c_body)
    ]
    assert [(status, body["error"]) for status, _, body in answers] == [
        (400, "bad_request"),
        (431, "headers_too_large"),
        (408, "request_timeout"),
        (408, "request_timeout"),
        (400, "bad_request"),  # RFC 9112 §3.2, as nginx
        (400, "bad_request"),  # the body would be lost: the turn reached legacy empty
    ]
    for _, headers, _ in answers:
        assert headers["content-type"] == "application/json"
    assert silent == b""
    # every answer is counted, and logged as a Performance line the report reads
    assert await _gateway_4xx(port) - before == 8
    log = tmp_path / "gateway.log"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    served = [line["status"] for line in lines if line["event"] == "Performance: request served"]
    assert sorted(served) == [400, 400, 400, 408, 408, 431, 431, 431]


async def test_past_the_connection_limit_a_request_gets_the_json_503(
    gateway: ChatctlProcess,
) -> None:
    port = gateway.port
    assert port is not None
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(6)]
    try:
        for _, writer in held:  # each mid-request: a partial header line keeps it open
            writer.write(b"GET /healthz HTTP/1.1\r\n")
        await asyncio.gather(*(writer.drain() for _, writer in held))
        over = await _exchange(port, b"GET /api/chat HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        for _, writer in held:
            writer.close()
    status, headers, body = _json_answer(over)
    assert (status, body["error"]) == (503, "overloaded")
    assert headers["connection"] == "close"


async def test_a_request_its_visitor_no_longer_waits_for_is_not_forwarded(
    gateway: ChatctlProcess, legacy: PhpLegacy
) -> None:
    """A gateway that stalled (SIGSTOP) resumed on a request nginx had already answered with
    its 502 and sent it to legacy 16 s later, counted twice (a fresh helper, issue 17). nginx
    stamps each request (X-Request-Start); one older than GATEWAY_STALE_AFTER is dropped."""
    port = gateway.port
    assert port is not None
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as client:
        before = (await client.get(f"{url}/metrics")).text
        stale = await client.post(f"{url}/api/chat", json={"message": "I was hurt at work"},
                                  headers={"x-request-start": f"t={time.time() - 6:.3f}"})  # fmt: skip
        fresh = await client.post(f"{url}/api/chat", json={"message": "I was hurt at work"},
                                  headers={"x-request-start": f"t={time.time():.3f}"})  # fmt: skip
        after = (await client.get(f"{url}/metrics")).text
    assert stale.status_code == 504
    assert stale.json()["error"] == "stale_request"
    assert fresh.status_code == 200
    assert len(list((legacy.data_dir / "sessions").glob("*.json"))) == 1  # the fresh one only
    assert sample_sum(after, "gateway_stale_requests_total") == 1
    counted = sample_sum(after, "gateway_requests_total{") - sample_sum(
        before, "gateway_requests_total{"
    )
    assert counted == 1  # the visitor got nginx's answer for the stale one, counted there
