"""Unleash through the real UnleashClient SDK against a local server speaking Unleash's client API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient

from tests.integration.conftest import GatewayOpener
from tests.support.fake_unleash import FakeUnleash, rollout_feature
from tests.support.processes import free_port

FIRST = "I was rear-ended on the freeway and hurt my neck"


@pytest.fixture
def unleash() -> Iterator[FakeUnleash]:
    server = FakeUnleash()
    server.features = [rollout_feature("new-chat", 100), rollout_feature("new-chat-shadow", 0)]
    yield server
    server.stop()


async def first_turn_backend(gw: AsyncTestClient) -> str:  # type: ignore[type-arg]
    gw.cookies.clear()
    response = await gw.post("/api/chat", json={"message": FIRST})
    assert response.status_code == 200
    return response.headers["x-chat-backend"]


async def eventually(check: object, within: float = 6.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_unleash_decides_the_rollout_and_its_outage_keeps_the_last_state(
    open_gateway: GatewayOpener, unleash: FakeUnleash
) -> None:
    env = {
        "UNLEASH_URL": unleash.url,
        "UNLEASH_API_TOKEN": unleash.token,
        "UNLEASH_REFRESH_INTERVAL": "1",
        "NEW_CHAT_PERCENT": "0",  # Unleash, not the environment, decides the rollout
    }
    async with open_gateway(**env) as gw:

        async def on_new() -> bool:  # the SDK starts in the background: after its first fetch
            return await first_turn_backend(gw) == "new"

        await eventually(on_new)
        ready = (await gw.get("/readyz")).json()
        assert ready["flags"]["source"] == "unleash+redis"
        assert ready["checks"]["unleash"]["ok"] is True
        assert unleash.feature_requests >= 1
        assert unleash.unauthorized == 0

        unleash.features = [rollout_feature("new-chat", 0)]

        async def moved_to_legacy() -> bool:
            return await first_turn_backend(gw) == "legacy"

        await eventually(moved_to_legacy)
        unleash.features = [rollout_feature("new-chat", 100)]

        async def back_on_new() -> bool:
            return await first_turn_backend(gw) == "new"

        await eventually(back_on_new)
        unleash.stop()

        async def outage_reported() -> bool:
            body = (await gw.get("/readyz")).json()
            return body["status"] == "degraded" and body["failing"] == ["unleash"]

        await eventually(outage_reported)
        for _ in range(5):
            assert await first_turn_backend(gw) == "new"  # the last good toggles still apply
        metrics = (await gw.get("/metrics")).text
        assert "gateway_unleash_up 0.0" in metrics


async def test_gateway_started_while_unleash_is_down_routes_on_its_bootstrap(
    open_gateway: GatewayOpener,
) -> None:
    env = {
        "UNLEASH_URL": f"http://127.0.0.1:{free_port()}/api",
        "UNLEASH_REFRESH_INTERVAL": "1",
        "NEW_CHAT_PERCENT": "100",
    }
    async with open_gateway(**env) as gw:
        assert await first_turn_backend(gw) == "new"  # not "everything off"
        ready = await gw.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["failing"] == ["unleash"]
