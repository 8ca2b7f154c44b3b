"""The site's nginx config with a real nginx, the gateway process and the PHP legacy: routing,
the fallback when the gateway is down, and `chatctl rollback full` (and `--undo`) under traffic."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.nginx import Nginx
from tests.support.processes import (
    ChatctlProcess,
    PhpLegacy,
    free_port,
)
from tests.support.processes import (
    run_chatctl as chatctl,
)

FIRST = "I was rear-ended on the freeway and hurt my neck"


@pytest.fixture(params=["gateway"])
def site(
    request: pytest.FixtureRequest,
    gateway_env: dict[str, str],
    legacy: PhpLegacy,
    redis: Redis,
    tmp_path: Path,
) -> Iterator[tuple[Nginx, ChatctlProcess]]:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed; run `make test` (it installs nginx-light)")
    port = free_port()
    gateway = ChatctlProcess(
        ["serve"], gateway_env | {"PORT": str(port), "LOG_LEVEL": "WARNING"}, port
    )
    env = gateway_env | {
        "GATEWAY_UPSTREAM": f"127.0.0.1:{port}",
        "LEGACY_UPSTREAM": f"127.0.0.1:{legacy.port}",
    }
    nginx = Nginx(tmp_path, env, request.param)
    yield nginx, gateway
    nginx.stop()
    gateway.stop()


async def test_nginx_routes_chat_through_the_gateway_and_falls_back_when_it_is_down(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, gateway = site
    url = f"http://127.0.0.1:{nginx.port}"
    async with httpx.AsyncClient(timeout=10) as client:
        through = await client.post(f"{url}/api/chat", json={"message": FIRST})
        home = await client.get(f"{url}/")
        assert through.status_code == 200
        assert through.headers["x-chat-backend"] == "legacy"  # the gateway chose and said so
        assert "server" not in through.headers or "nginx/" not in through.headers["server"]
        assert home.status_code == 200
        assert "Legacy site home page" in home.text
        gateway.stop()
        client.cookies.clear()  # a new visitor
        fallback = await client.post(f"{url}/api/chat", json={"message": FIRST})
        assert fallback.status_code == 200  # a gateway outage is not a chat outage
        assert fallback.headers["x-chat-backend"] == "legacy"  # labelled by nginx
        assert fallback.json()["step"] == "name"
    # counted: nginx logs what legacy answered in the gateway's place, as a Performance line
    # the report reads (the gateway answered the first turn itself and logged it there)
    report = await asyncio.to_thread(
        chatctl, nginx.env, "report", "performance", "--json", "--log", str(nginx.chat_log)
    )
    counted = json.loads(report.stdout)
    assert counted["per_backend"] == {"legacy": 1}
    assert counted["status_classes"] == {"2xx": 1}


@pytest.mark.parametrize("site", ["gateway", "split"], indirect=True)
async def test_a_turn_the_gateway_received_is_never_sent_to_legacy_again(
    site: tuple[Nginx, ChatctlProcess], legacy: PhpLegacy
) -> None:
    """nginx's fallback re-sent a POST the gateway had already forwarded: with legacy slow, one
    visitor turn reached legacy twice and took 21 s (issue 17). Now the gateway's own timeout
    reply (JSON, labelled) reaches the visitor and legacy saw the turn once."""
    nginx, _ = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    async with httpx.AsyncClient(timeout=20) as client:
        slow = await client.post(f"{url}?sleep_ms=4000", json={"message": FIRST})  # > 3 s
    assert slow.status_code == 504
    assert slow.json()["error"] == "legacy_timeout"
    assert slow.headers["x-chat-backend"] == "legacy"
    # the 504 itself says nginx did not send the turn again (a second try would have ended in
    # legacy's 200, 4 s later); legacy finishes the one turn it got once its sleep is over
    for _ in range(100):
        if list((legacy.data_dir / "sessions").glob("*.json")):
            break
        await asyncio.sleep(0.05)
    assert len(list((legacy.data_dir / "sessions").glob("*.json"))) == 1


@pytest.mark.parametrize("mode", ["gateway", "split"])
async def test_when_neither_answers_the_visitor_gets_the_json_contract(
    mode: str, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = gateway_env | {
        "GATEWAY_UPSTREAM": f"127.0.0.1:{free_port()}",  # nothing listens on either
        "LEGACY_UPSTREAM": f"127.0.0.1:{free_port()}",
    }
    nginx = Nginx(tmp_path, env, mode)
    try:
        async with httpx.AsyncClient(timeout=20) as client:
            neither = await client.post(
                f"http://127.0.0.1:{nginx.port}/api/chat", json={"message": FIRST}
            )
    finally:
        nginx.stop()  # its log lines are written by then
    assert neither.status_code == 502
    assert neither.headers["content-type"] == "application/json"
    assert neither.json()["error"] == "chat_unavailable"
    logged = [json.loads(line) for line in nginx.chat_log.read_text().splitlines()]
    assert [(line["backend"], line["status"]) for line in logged] == [("nginx", 502)]


async def test_rollback_full_and_undo_under_traffic_without_failed_requests(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, _ = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    statuses: list[int] = []
    errors: list[str] = []
    stop = asyncio.Event()

    async def visitor() -> None:
        """Like a browser: a request that dies on a reused keep-alive connection before any
        byte of the reply (the connection-close race of every graceful reload) is sent again."""
        async with httpx.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                client.cookies.clear()
                for attempt in (1, 2):
                    try:
                        response = await client.post(url, json={"message": FIRST})
                    except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                        if attempt == 2:
                            statuses.append(0)
                            errors.append(repr(exc))
                        continue
                    except httpx.HTTPError as exc:
                        statuses.append(0)
                        errors.append(repr(exc))
                    else:
                        statuses.append(response.status_code)
                    break

    tasks = [asyncio.create_task(visitor()) for _ in range(4)]
    await asyncio.sleep(0.3)
    dry = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full", "--dry-run")
    assert dry.returncode == 0
    assert "mode: gateway" in nginx.site.read_text().lower()  # dry run changed nothing
    full = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full")
    async with httpx.AsyncClient(timeout=10) as client:
        direct = await client.post(url, json={"message": FIRST})
    undo = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full", "--undo")
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*tasks)
    assert full.returncode == 0, full.stdout + full.stderr
    assert "verified: HTTP 200 from legacy PHP directly" in full.stdout
    assert "x-chat-backend" not in direct.headers
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert "verified: HTTP 200 from the gateway" in undo.stdout
    assert len(statuses) > 20
    assert set(statuses) == {200}, errors
    history = chatctl(nginx.env, "flags", "history")
    assert "nginx./api/chat: gateway -> legacy" in history.stdout
    assert "nginx./api/chat: legacy -> gateway" in history.stdout


async def test_rollback_full_refuses_a_config_nginx_rejects(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, _ = site
    before = nginx.site.read_text()
    broken = nginx.env | {"LEGACY_UPSTREAM": "127.0.0.1:99999"}  # port out of range
    result = await asyncio.to_thread(chatctl, broken, "rollback", "full")
    assert result.returncode == 1
    assert "FAILED nginx -t" in result.stdout
    assert nginx.site.read_text() == before  # the previous config is back


def _counter(metrics: str, line_start: str) -> float:
    found = [line for line in metrics.splitlines() if line.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


@pytest.mark.parametrize("site", ["split"], indirect=True)
async def test_split_mode_carries_pinned_legacy_turns_past_the_gateway(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, gateway = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    metrics_url = f"http://127.0.0.1:{gateway.port}/metrics"
    served = 'gateway_requests_total{backend="legacy",status="2xx"}'
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(url, json={"message": FIRST})
        assert first.status_code == 200
        assert first.headers["x-chat-backend"] == "legacy"
        assert "chat_route" in client.cookies  # pinned by the gateway on the first turn
        session = first.json()["sessionId"]
        before = (await client.get(metrics_url)).text
        second = await client.post(url, json={"message": "Ann Lee", "sessionId": session})
        after = (await client.get(metrics_url)).text
        assert second.status_code == 200
        assert second.headers["x-chat-backend"] == "legacy"  # labelled by nginx
        assert second.json()["step"] == "phone"  # the same legacy conversation, one step on
        assert _counter(after, served) == _counter(before, served) == 1  # not through Python
        assert _counter(after, 'gateway_route_hints_total{upstream="chat_legacy"}') == 1
        report = await asyncio.to_thread(
            chatctl, nginx.env, "report", "performance", "--json", "--log", str(nginx.chat_log)
        )
        counted = json.loads(report.stdout)  # nginx logged the turn it carried, and only that
        assert counted["per_backend"] == {"legacy": 1}
        assert counted["status_classes"] == {"2xx": 1}
        assert counted["latency_ms"]["p50"] is not None
        gateway.stop()
        third = await client.post(url, json={"message": "555-201-7788", "sessionId": session})
        assert third.status_code == 200  # gateway down: legacy PHP answers, as in gateway mode
        assert third.json()["step"] == "email"
        client.cookies.clear()
        stranger = await client.post(url, json={"message": FIRST})
        assert stranger.status_code == 200
        assert stranger.json()["step"] == "name"


@pytest.mark.parametrize("site", ["split"], indirect=True)
async def test_split_mode_sends_new_engine_conversations_through_the_gateway(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, _ = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    flags = await asyncio.to_thread(chatctl, nginx.env, "flags", "set", "new_chat_percent", "100")
    assert flags.returncode == 0, flags.stdout + flags.stderr
    await asyncio.sleep(1.5)  # the gateway picks the change up within its poll interval
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(url, json={"message": FIRST})
        second = await client.post(url, json={"message": "Ann Lee"})
    assert first.headers["x-chat-backend"] == second.headers["x-chat-backend"] == "new"
    assert second.json()["step"] == "phone"


@pytest.mark.parametrize("site", ["split"], indirect=True)
async def test_rollback_from_split_mode_and_undo_come_back_to_split(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, _ = site
    full = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full")
    assert full.returncode == 0, full.stdout + full.stderr
    assert "mode: legacy" in nginx.site.read_text().lower()
    undo = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full", "--undo")
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert "mode: split" in nginx.site.read_text().lower()
    assert "verified: HTTP 200 from the gateway" in undo.stdout
    history = chatctl(nginx.env, "flags", "history").stdout
    assert "nginx./api/chat: split -> legacy" in history
    assert "nginx./api/chat: legacy -> split" in history


INTERNAL = {"X-Shadow-Request": "1", "X-Shadow-Auth": "forged", "X-Forwarded-Host": "evil.test"}


def internal_headers_seen(reply: httpx.Response) -> set[str]:
    """Which of the visitor's `INTERNAL` values legacy's echo hook received (the gateway sets
    an X-Forwarded-Host of its own: only the visitor's forged one counts)."""
    assert reply.status_code == 201, reply.text
    received = reply.json()["headers"]
    return {name for name, value in INTERNAL.items() if received.get(name.lower()) == value}


@pytest.mark.parametrize("site", ["legacy", "gateway", "split"], indirect=True)
async def test_a_visitors_internal_headers_never_reach_legacy_on_any_path(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    """In split mode nginx passed a visitor's X-Shadow-Request: 1 to legacy, which then kept no
    lead (issue 18). Every path a visitor's turn can take to legacy: straight (legacy mode), the
    gateway's fallback when it is down, and split mode's pinned legacy turn."""
    nginx, gateway = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    async with httpx.AsyncClient(timeout=10) as client:
        if nginx.mode == "split":  # pin a conversation to legacy, then its turn goes direct
            first = await client.post(url, json={"message": FIRST})
            assert first.headers["x-chat-backend"] == "legacy"
        direct = await client.post(
            f"{url}?debug=echo", json={"message": "Ann Lee"}, headers=INTERNAL
        )
        assert internal_headers_seen(direct) == set()
        if nginx.mode == "gateway":
            gateway.stop()
            fallback = await client.post(
                f"{url}?debug=echo", json={"message": "Ann Lee"}, headers=INTERNAL
            )
            assert internal_headers_seen(fallback) == set()
        home = await client.get(f"http://127.0.0.1:{nginx.port}/?debug=echo", headers=INTERNAL)
        assert internal_headers_seen(home) == set()


RATE_LIMITED_BODY = {"error": "rate_limited", "detail": "too many messages; please wait a moment"}


@pytest.mark.parametrize("site", ["gateway", "split"], indirect=True)
async def test_the_emergency_rate_limit_holds_on_legacy_turns_in_gateway_and_split_modes(
    site: tuple[Nginx, ChatctlProcess], redis: Redis
) -> None:
    """At 0 % rollout the runbook's emergency limit did nothing for legacy turns (issue 18):
    in gateway mode the gateway counts them now, and in split mode, where nginx carries pinned
    legacy turns itself, the route hint does. Either way the visitor's address is the one nginx
    forwarded, and the 429 is the gateway's JSON."""
    nginx, gateway = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    await redis.set("emergency_rate_limit", "1")  # EMERGENCY_RATE_LIMIT_PER_MINUTE: 5
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(url, json={"message": FIRST})  # the gateway counts it: 1
        session = first.json()["sessionId"]
        turns = [
            await client.post(url, json={"message": "Ann Lee", "sessionId": session})
            for _ in range(7)
        ]
    assert [turn.status_code for turn in turns] == [200] * 4 + [429] * 3
    limited = turns[-1]
    assert limited.json() == RATE_LIMITED_BODY
    assert limited.headers["content-type"] == "application/json"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-chat-backend"] == "legacy"
    async with httpx.AsyncClient(timeout=10) as client:  # the gateway's own 429 is the same
        direct = await client.post(
            f"http://127.0.0.1:{gateway.port}/api/chat", json={"message": FIRST}
        )
    assert direct.status_code == 429
    assert direct.json() == limited.json()
    assert direct.headers["content-type"] == limited.headers["content-type"]


async def test_legacy_mode_limits_chat_turns_in_nginx(
    gateway_env: dict[str, str], legacy: PhpLegacy, tmp_path: Path
) -> None:
    """Full rollback: no gateway on the chat path, so nginx's `limit_req` holds the limit,
    rendered from RATE_LIMIT_PER_MINUTE; other requests are not counted."""
    env = gateway_env | {
        "GATEWAY_UPSTREAM": f"127.0.0.1:{free_port()}",
        "LEGACY_UPSTREAM": f"127.0.0.1:{legacy.port}",
        "RATE_LIMIT_PER_MINUTE": "3",
    }
    nginx = Nginx(tmp_path, env, "legacy")
    url = f"http://127.0.0.1:{nginx.port}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            turns = [
                await client.post(f"{url}/api/chat", json={"message": FIRST}) for _ in range(5)
            ]
            probes = [await client.get(f"{url}/api/chat") for _ in range(5)]
    finally:
        nginx.stop()
    assert [turn.status_code for turn in turns] == [200] * 3 + [429] * 2
    assert turns[-1].json() == RATE_LIMITED_BODY
    assert turns[-1].headers["retry-after"] == "20"
    assert {probe.status_code for probe in probes} == {200}  # health checks are not turns


@pytest.mark.parametrize("site", ["legacy", "gateway", "split"], indirect=True)
async def test_nothing_internal_reaches_a_visitor_in_any_mode(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    """Legacy's `Host: 127.0.0.1:<port>` and `X-Powered-By: PHP/...` reached visitors, and the
    cron status showed queue counts and worker hosts without a secret (issue 18)."""
    nginx, _ = site
    url = f"http://127.0.0.1:{nginx.port}"
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(f"{url}/api/chat", json={"message": FIRST})
        second = await client.post(f"{url}/api/chat", json={"message": "Ann Lee"})
        home = await client.get(f"{url}/")
        remote = {"X-Forwarded-For": "203.0.113.9"}  # a visitor that is not on this host
        status = await client.get(f"{url}/api/cron/process-leads", headers=remote)
    for reply in (first, second, home):
        assert reply.status_code == 200
        assert "x-powered-by" not in reply.headers
        assert "host" not in reply.headers
    assert second.json()["step"] == "phone"
    assert status.status_code == 401
    assert status.json()["error"] == "unauthorized"  # no counts, no worker hosts


async def _raw_post(port: int, extra_header: bytes, body: bytes) -> tuple[int, bytes]:
    """A request no HTTP library would send (a control byte in a header value)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/chat HTTP/1.1\r\nHost: chat.test\r\nContent-Type: application/json\r\n"
        + extra_header
        + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, _ = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower()


@pytest.mark.parametrize("site", ["split"], indirect=True)
async def test_a_request_the_route_hint_refuses_does_not_go_around_the_gateway(
    site: tuple[Nginx, ChatctlProcess], redis: Redis
) -> None:
    """A control byte in any header made the route hint's server answer 400, which nginx took
    for "gateway down" and sent the turn to legacy itself: no rate limit (40 of 40 at the
    emergency limit of 5), no pin, no label (a fresh helper, issue 18)."""
    nginx, _ = site
    await redis.set("emergency_rate_limit", "1")
    body = json.dumps({"message": FIRST}).encode()
    replies = [await _raw_post(nginx.port, b"X-Junk: \x01", body) for _ in range(8)]
    served = [head for status, head in replies if status == 200]
    assert len(served) <= 5
    assert all(b"x-chat-backend:" in head for head in served)


@pytest.mark.parametrize("site", ["legacy", "gateway", "split"], indirect=True)
async def test_a_body_over_nginx_limit_gets_the_json_contract(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, _ = site
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(f"http://127.0.0.1:{nginx.port}/api/chat", content=b"x" * 70_000)
    assert reply.status_code == 413
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] == "payload_too_large"


@pytest.mark.parametrize("site", ["gateway"], indirect=True)
async def test_oversized_headers_end_at_nginx(site: tuple[Nginx, ChatctlProcess]) -> None:
    """The gateway alone took 50 MB of request headers (issue 17): nginx refuses a header line
    over 8 KB before any backend sees it."""
    nginx, _ = site
    async with httpx.AsyncClient(timeout=10) as client:
        big = await client.post(
            f"http://127.0.0.1:{nginx.port}/api/chat",
            json={"message": FIRST},
            headers={"x-padding": "a" * 9000},
        )
        fine = await client.post(
            f"http://127.0.0.1:{nginx.port}/api/chat",
            json={"message": FIRST},
            headers={"x-padding": "a" * 4000},
        )
    assert big.status_code == 431  # nginx's own 494, answered in the contract's JSON
    assert big.json()["error"] == "headers_too_large"
    assert "x-chat-backend" not in big.headers  # no backend saw it
    assert fine.status_code == 200


async def test_a_dead_legacy_behind_nginx_is_the_json_contract_labelled(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """With legacy killed, visitors got nginx's HTML 502 page (issue 17): the gateway's own
    JSON 502 now reaches them through nginx, labelled, and no turn is retried anywhere."""
    dead = f"127.0.0.1:{free_port()}"
    port = free_port()
    env = gateway_env | {"PORT": str(port), "LEGACY_URL": f"http://{dead}/api/chat"}
    gateway = ChatctlProcess(["serve"], env | {"LOG_STDOUT": "false"}, port)
    nginx = Nginx(tmp_path, env | {"GATEWAY_UPSTREAM": f"127.0.0.1:{port}",
                                   "LEGACY_UPSTREAM": dead}, "gateway")  # fmt: skip
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.post(
                f"http://127.0.0.1:{nginx.port}/api/chat", json={"message": FIRST}
            )
    finally:
        nginx.stop()
        gateway.stop()
    assert reply.status_code == 502
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] == "legacy_connect"
    assert reply.headers["x-chat-backend"] == "legacy"


@pytest.mark.parametrize("site", ["legacy", "gateway", "split"], indirect=True)
async def test_odd_methods_and_uri_spellings_keep_the_json_contract(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    """`FOO /api/chat` got uvicorn's plain-text 400 and `//api/chat` or `/api/./chat` a 404
    from the gateway, whose path nginx passed on raw (a fresh helper, issue 17)."""
    nginx, _ = site
    base = f"http://127.0.0.1:{nginx.port}"
    async with httpx.AsyncClient(timeout=10) as client:
        odd = await client.request("FOO", f"{base}/api/chat")
        trace = await client.request("TRACE", f"{base}/api/chat")
        spelled = []
        for path in ("//api/chat", "/api/./chat", "/api/../api/chat"):
            client.cookies.clear()  # each a new visitor
            spelled.append(await client.post(f"{base}{path}", json={"message": FIRST}))
    for refused in (odd,):
        assert refused.status_code == 405
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"] == "http_error"
    assert trace.status_code in (400, 405)  # nginx refuses TRACE itself, before any location
    for reply in spelled:
        assert reply.status_code == 200, reply.text
        assert reply.json()["step"] == "name"


def test_render_check_tests_the_file_it_wrote(tmp_path: Path, base_env: dict[str, str]) -> None:
    """`--check` ran `nginx -t` on the system's config, so a written file with a port of 99999
    passed (a fresh helper, issue 17)."""
    out = tmp_path / "site.conf"
    bad = chatctl(base_env | {"NGINX_LISTEN": "127.0.0.1:99999"},
                  "nginx", "render", "--out", str(out), "--check")  # fmt: skip
    assert bad.returncode == 1
    assert "invalid port" in bad.stdout
    good = chatctl(base_env | {"NGINX_LISTEN": f"127.0.0.1:{free_port()}"},
                   "nginx", "render", "--mode", "split", "--out", str(out), "--check")  # fmt: skip
    assert good.returncode == 0, good.stdout


@pytest.mark.parametrize("site", ["gateway", "split"], indirect=True)
async def test_with_the_gateway_down_a_new_engine_conversation_is_not_restarted_on_legacy(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    """With the gateway stopped, a conversation on the new engine fell back to legacy, which
    started it over (a fresh helper, issue 17). Its route cookie keeps it from the fallback:
    "try again shortly", while a new visitor still gets legacy."""
    nginx, gateway = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    flags = await asyncio.to_thread(chatctl, nginx.env, "flags", "set", "new_chat_percent", "100")
    assert flags.returncode == 0, flags.stdout + flags.stderr
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(url, json={"message": FIRST})
        assert first.headers["x-chat-backend"] == "new"
        gateway.stop()
        held = await client.post(url, json={"message": "Ann Lee"})
        client.cookies.clear()
        stranger = await client.post(url, json={"message": FIRST})
    assert held.status_code == 502
    assert held.json()["error"] == "chat_unavailable"
    assert stranger.status_code == 200
    assert stranger.headers["x-chat-backend"] == "legacy"


@pytest.mark.parametrize(
    ("site", "carried"),
    [("gateway", {}), ("split", {}), ("legacy", {"legacy": 1})],
    indirect=["site"],
)
async def test_what_nginx_answers_itself_is_counted_in_the_performance_report(
    site: tuple[Nginx, ChatctlProcess], carried: dict[str, int]
) -> None:
    """nginx's own 405 and 413 (and 502, 429) reached visitors but no log the report reads, so an
    error rate built from it read low (issue 17). Each is a Performance line now; legacy mode,
    with no gateway in the path, logs every chat request."""
    nginx, _ = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    async with httpx.AsyncClient(timeout=10) as client:
        odd = await client.request("FOO", url)
        large = await client.post(url, content=b"x" * 70_000)
        turn = await client.post(url, json={"message": FIRST})
    assert (odd.status_code, large.status_code, turn.status_code) == (405, 413, 200)
    expected = {"nginx": 2} | carried
    for _ in range(100):  # nginx writes a line once its reply is out
        if len(nginx.chat_log.read_bytes().splitlines()) >= sum(expected.values()):
            break
        await asyncio.sleep(0.05)
    report = await asyncio.to_thread(
        chatctl, nginx.env, "report", "performance", "--json", "--log", str(nginx.chat_log)
    )
    counted = json.loads(report.stdout)
    assert counted["per_backend"] == expected
    assert counted["status_classes"] == {"4xx": 2} | ({"2xx": 1} if carried else {})


async def test_a_conversation_legacy_began_while_the_gateway_was_down_stays_on_legacy(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    """With the gateway down, legacy answered a first turn through nginx's fallback (no pin);
    the gateway came back at 100 % and the next turn went to the new engine, which started the
    conversation over (a fresh helper, issue 17). Legacy's own cookie is the evidence now."""
    nginx, gateway = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    flags = await asyncio.to_thread(chatctl, nginx.env, "flags", "set", "new_chat_percent", "100")
    assert flags.returncode == 0, flags.stdout + flags.stderr
    gateway.stop()
    async with httpx.AsyncClient(timeout=10) as client:  # a browser: cookies only
        first = await client.post(url, json={"message": FIRST})
        assert first.headers["x-chat-backend"] == "legacy"
        back = ChatctlProcess(["serve"], nginx.env | {"PORT": str(gateway.port),
                                                      "LOG_LEVEL": "WARNING"}, gateway.port)  # fmt: skip
        try:
            second = await client.post(url, json={"message": "Ann Lee"})
            third = await client.post(url, json={"message": "555-201-7788"})
            client.cookies.clear()
            stranger = await client.post(url, json={"message": FIRST})
        finally:
            back.stop()
    assert [r.headers["x-chat-backend"] for r in (second, third)] == ["legacy", "legacy"]
    assert [r.json()["step"] for r in (first, second, third)] == ["name", "phone", "email"]
    assert stranger.headers["x-chat-backend"] == "new"  # the rollout holds for new visitors


async def _raw(port: int, request: bytes) -> tuple[int, str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read(-1)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    content_type = next((line.split(":", 1)[1].strip() for line in lines[1:]
                         if line.lower().startswith("content-type:")), "")  # fmt: skip
    return int(lines[0].split()[1]), content_type, body


@pytest.mark.parametrize("site", ["legacy", "gateway", "split"], indirect=True)
async def test_what_nginx_refuses_while_reading_a_request_is_json_and_counted(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    """Malformed requests got nginx's HTML pages, and those on the chat path were in no log the
    report reads (a fresh helper, issue 17): bad chunked framing, TRACE, an unknown transfer
    coding. (What nginx cannot parse as a request at all keeps its own page: README.)"""
    nginx, _ = site
    cases = {
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n": (400, "bad_request"),
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
        b"Connection: close\r\n\r\n": (501, "not_implemented"),
        b"TRACE /api/chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n": (405, "http_error"),
    }
    for request, (status, error) in cases.items():
        got, content_type, body = await _raw(nginx.port, request)
        assert (got, content_type) == (status, "application/json"), request
        assert json.loads(body)["error"] == error
    for unparsable in (b"GARBAGE\r\n\r\n", b"GET /api/chat HTTP/9.9\r\nHost: x\r\n\r\n"):
        got, _, _ = await _raw(nginx.port, unparsable)
        assert got in (400, 505)  # nginx's own page: an error_page there would make it a 500
    for _ in range(100):  # nginx writes each line once its answer is out
        logged = [json.loads(line) for line in nginx.chat_log.read_text().splitlines()]
        if len(logged) >= 3:
            break
        await asyncio.sleep(0.05)
    # logged as nginx's own answers
    assert sorted(line["status"] for line in logged if line["backend"] == "nginx") == [
        400,
        405,
        501,
    ]


async def test_with_the_gateway_down_the_cron_path_answers_json(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    """The cron path got nginx's HTML 502 with the gateway down (a fresh helper, issue 17)."""
    nginx, gateway = site
    gateway.stop()
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(f"http://127.0.0.1:{nginx.port}/api/cron/process-leads")
    assert reply.status_code == 502
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] == "gateway_unavailable"
