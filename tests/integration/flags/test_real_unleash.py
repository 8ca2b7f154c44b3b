"""Unleash for real (issue 20): the gateway's SDK against the open-source Unleash server (over
PostgreSQL), driven through Unleash's admin API as an operator would drive its UI."""

from __future__ import annotations

import asyncio
import secrets

from flags import percent_rollout
from tests.integration.conftest import GatewayOpener, gateway_services
from tests.support.unleash_server import TOKENS, UnleashServer

FIRST = "I was rear-ended on the freeway and hurt my neck"


def unleash_env(server: UnleashServer, environment: str = "development") -> dict[str, str]:
    return {
        "UNLEASH_URL": server.url,
        "UNLEASH_API_TOKEN": TOKENS[environment],
        "UNLEASH_REFRESH_INTERVAL": "1",
        "NEW_CHAT_PERCENT": "0",  # Unleash, not the environment, decides the rollout
    }


async def test_the_real_server_buckets_sessions_as_the_gateway_does(
    open_gateway: GatewayOpener, real_unleash: UnleashServer
) -> None:
    """2,000 session ids: each goes where Unleash's own flexibleRollout (evaluated by the SDK
    from the real server's strategy) and the project's own bucketing send it, at 30 %."""
    real_unleash.rollout("new-chat", 30)
    real_unleash.rollout("new-chat-shadow", 0)
    async with open_gateway(**unleash_env(real_unleash)) as gw:
        unleash = gateway_services(gw).flags.unleash
        assert unleash is not None
        for _ in range(100):  # the SDK has fetched the server's toggles
            if "new-chat" in unleash.status().toggles_known:
                break
            await asyncio.sleep(0.05)
        ids = [secrets.token_urlsafe(18) for _ in range(2_000)]
        ours = percent_rollout("new-chat", 30)
        assert [unleash.in_rollout(i) for i in ids] == [ours(i) for i in ids]
        share = sum(map(ours, ids)) / len(ids)
        assert 0.26 < share < 0.34
        gw.cookies.clear()
        reply = await gw.post("/api/chat", json={"message": FIRST})
        assert reply.status_code == 200
