"""Shared fixtures: one real redis-server per test session, flushed before each test."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from hypothesis import settings
from redis.asyncio import Redis

from common import LogSettings, configure_logging
from newchat import Services, Settings, load_settings, provide_services
from tests.support.processes import RedisServer
from tests.support.unleash_server import Postgres, UnleashServer

# Property tests: the same examples on every CI run (a failure reproduces), fresh ones locally.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

LEADPROSPER_URL = "https://api.leadprosper.test/direct_post"
OPENAI_URL = "https://api.openai.test/v1"


HEAVY_MODULES = frozenset(
    {
        "tests.integration.chatctl.test_logs_and_cli",
        "tests.integration.chatctl.test_settings_and_output",
        "tests.integration.flags.test_flag_store_and_watcher",
        "tests.integration.flags.test_real_unleash",
        "tests.integration.proxy.test_gateway_processes",
        "tests.integration.proxy.test_http1_client",
        "tests.integration.proxy.test_server_protocol",
        "tests.integration.proxy.test_upstream_contract",
        "tests.integration.rollback.test_alert_rules",
        "tests.integration.rollback.test_backup",
        "tests.integration.rollback.test_nginx_rollback",
    }
)
"""Modules whose tests start processes of their own (gateways, workers, nginx, Redis) or time
them, besides those marked `slow`: under `pytest -n 2 --dist loadgroup` (`make test`) they all
run on one worker, one at a time, so two of them never compete for the machine's two cores."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heavy tests in one xdist group (see `HEAVY_MODULES`); and under mutation testing
    (`make mutate`), the quickest tests first.

    mutmut runs each mutant's tests with `-x`, so a mutant a quick test catches costs only that
    test. Durations come from mutmut's own stats run (`mutmut-stats.json`, seconds per test).
    """
    for item in items:
        if item.get_closest_marker("slow") or item.module.__name__ in HEAVY_MODULES:  # type: ignore[union-attr]
            item.add_marker(pytest.mark.xdist_group("heavy"))
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    stats = Path("mutmut-stats.json")
    if mutant in ("", "stats", "mutant_generation", "fail") or not stats.exists():
        return
    seconds: dict[str, float] = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: seconds.get(item.nodeid, 0.0))


@pytest.fixture(autouse=True)
def no_dev_stack_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`chatctl` run in-process must not pick up a `make run` stack's var/stack.env."""
    monkeypatch.setenv("CHATCTL_ENV_FILE", "/dev/null")


@pytest.fixture(scope="session", autouse=True)
def production_logging(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Log lines as every entry point writes them (JSON, plain tracebacks), never structlog's
    development renderer, whose tracebacks print local variables (contact details) and take
    seconds to draw."""
    folder = tmp_path_factory.mktemp("logs")
    configure_logging(LogSettings(file=str(folder / "session.log"), stdout=False))


@pytest.fixture(scope="session")
def unleash_server() -> Iterator[UnleashServer]:
    """A real Unleash server (over its own PostgreSQL), once per session: tests that use it are
    in the heavy xdist group, so one worker starts it."""
    postgres = Postgres()
    try:
        server = UnleashServer(postgres)
        try:
            yield server
        finally:
            server.stop()
    finally:
        postgres.stop()


@pytest.fixture
def real_unleash(unleash_server: UnleashServer) -> UnleashServer:
    """The session's Unleash server with no toggles."""
    unleash_server.reset()
    return unleash_server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def base_env(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    return {
        "REDIS_URL": redis_server.url,
        "LOG_FILE": str(tmp_path / "logs" / "application.log"),
        "SESSION_SECRET": "test-session-secret",
        "CRON_SECRET": "test-cron-secret",
        "LEADPROSPER_API_URL": LEADPROSPER_URL,
        "LEADPROSPER_API_KEY": "lp-key",
        "LEADPROSPER_CAMPAIGN_ID": "123",
        "LEADPROSPER_SUPPLIER_ID": "456",
    }


@pytest.fixture
def settings(base_env: dict[str, str]) -> Settings:
    return load_settings(base_env)


@pytest.fixture
def outside() -> respx.MockRouter:
    """Routes for services outside the machine (LeadProsper, OpenAI); anything else fails."""
    return respx.MockRouter(assert_all_called=False, assert_all_mocked=True)


@pytest.fixture
async def outside_http(outside: respx.MockRouter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(outside.async_handler)) as client:
        yield client


@pytest.fixture
async def engine(settings: Settings, redis: Redis, outside_http: httpx.AsyncClient) -> Services:
    """The engine's services on the test Redis, with respx for services outside the machine."""
    return provide_services(settings, redis, outside_http)
