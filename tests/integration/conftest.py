from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from newchat.app import create_app
from newchat.settings import Settings


@pytest.fixture
async def client(
    settings: Settings, redis: Redis, outside: respx.MockRouter
) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    def http_factory() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(outside.async_handler))

    app = create_app(settings, http_factory=http_factory)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def say(client: AsyncTestClient, message: str, **extra: object) -> httpx.Response:  # type: ignore[type-arg]
    return await client.post("/api/chat", json={"message": message, **extra})
