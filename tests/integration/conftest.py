from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from flags import FlagStore, flag_name, parse_value
from newchat import Settings, create_app, load_settings
from proxy import GatewayApp, GatewayServices, create_gateway_app, load_gateway_settings
from tests.support.bad_backends import BadBackend, Behaviour
from tests.support.processes import PhpLegacy


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


@pytest.fixture(scope="session")
def legacy_php(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhpLegacy]:
    server = PhpLegacy(tmp_path_factory.mktemp("legacy"))
    yield server
    server.stop()


@pytest.fixture
def legacy(legacy_php: PhpLegacy) -> PhpLegacy:
    """The PHP stand-in with no sessions or leads left from earlier tests."""
    legacy_php.reset()
    return legacy_php


@pytest.fixture
def gateway_env(base_env: dict[str, str], legacy: PhpLegacy, tmp_path: Path) -> dict[str, str]:
    return base_env | {
        "LEGACY_URL": legacy.url,
        "UNLEASH_CACHE_DIR": str(tmp_path / "unleash"),
        "FLAG_STATE_FILE": str(tmp_path / "gateway-flags.json"),
        "RATE_LIMIT_PER_MINUTE": "100000",  # many visitors share the test client address
        # Short timeouts: a hop that hangs (a broken backend, a mutant) fails its test in
        # seconds, not the 10 s a visitor is given.
        "LEGACY_TIMEOUT": "3",
        "NEW_CHAT_TIMEOUT": "3",
        "SHADOW_TIMEOUT": "3",
    }


GatewayOpener = Callable[..., contextlib.AbstractAsyncContextManager[AsyncTestClient]]  # type: ignore[type-arg]


@pytest.fixture
def open_gateway(
    gateway_env: dict[str, str], redis: Redis, outside: respx.MockRouter
) -> GatewayOpener:
    """`async with open_gateway(NEW_CHAT_PERCENT="30") as gw:` a gateway app on the real Redis
    and PHP legacy, with extra environment; respx stands in only for OpenAI and LeadProsper."""

    @contextlib.asynccontextmanager
    async def opener(**env: str) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
        environ = gateway_env | env
        settings = load_settings(environ)
        gateway = load_gateway_settings(environ, settings)

        def http_factory() -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.MockTransport(outside.async_handler))

        app = create_gateway_app(settings, gateway, http_factory=http_factory)
        async with AsyncTestClient(app=app) as test_client:
            _APPS[id(test_client)] = app
            try:
                yield test_client
            finally:
                del _APPS[id(test_client)]

    return opener


@pytest.fixture
def bad_backend(request: pytest.FixtureRequest) -> Iterator[BadBackend]:
    """A backend that misbehaves as `request.param` says (use with `indirect=`)."""
    behaviour: Behaviour = request.param
    server = BadBackend(behaviour)
    yield server
    server.stop()


_APPS: dict[int, GatewayApp] = {}


def gateway_services(client: AsyncTestClient) -> GatewayServices:  # type: ignore[type-arg]
    """The running services of the gateway behind a client from `open_gateway`."""
    services = _APPS[id(client)].services
    assert services is not None, "the gateway has not started"
    return services


async def set_flag(redis: Redis, name: str, value: str) -> int:
    """Sets a run-time flag the way `chatctl flags set` does; returns the new version."""
    flag = flag_name(name)
    change = await FlagStore(redis).set(
        flag, parse_value(flag, value), actor="test", reason="test", source="test"
    )
    return change.version


async def wait_for_version(client: AsyncTestClient, version: int, within: float = 3.0) -> None:  # type: ignore[type-arg]
    """Until the gateway behind `client` routes on flag `version` (it polls at least every second)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        ready = (await client.get("/readyz")).json()
        if ready["flags"]["version"] >= version:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gateway still on flag version {ready['flags']['version']}")
        await asyncio.sleep(0.05)
