"""Which turns the shadow mirror takes: the kill switch stops it, legacy is mirrored to only when
marked safe, and a mirrored turn is always marked as one (the backend's side-effect firewall)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from flags import Backend, FlagValues
from proxy import (
    ForwardRequest,
    GatewayMetrics,
    ShadowConfig,
    ShadowMirror,
    UpstreamReply,
    load_rules,
)
from tests.support.shadow_turns import REPLY, SESSION, VISITOR
from tests.support.static_flags import static_flags

TURN = ForwardRequest("POST", b"", [(b"cookie", b"chat_sid=x")], b'{"message": "hi"}', VISITOR)


class Recorder:
    """A backend that records what it was sent and answers like the engine."""

    def __init__(self) -> None:
        self.sent: list[ForwardRequest] = []

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        self.sent.append(request)
        return UpstreamReply(200, [], b'{"sessionId": "shadowsession0001", "step": "name"}', None)


def mirror_for(
    redis: Redis, values: FlagValues, *, kill_switch: bool = False
) -> tuple[ShadowMirror, dict[Backend, Recorder], CollectorRegistry]:
    registry = CollectorRegistry()
    backends: dict[Backend, Recorder] = {"new": Recorder(), "legacy": Recorder()}
    mirror = ShadowMirror(
        flags=static_flags(values, kill_switch=kill_switch),
        upstreams=backends,  # type: ignore[arg-type]
        redis=redis,
        rules=load_rules(),
        metrics=GatewayMetrics(registry),
        config=ShadowConfig(noise_percent=0),
    )
    return mirror, backends, registry


async def test_the_kill_switch_stops_shadow_traffic(redis: Redis) -> None:
    """`ENABLE_NEW_CHAT=false` sends the new engine nothing at all, mirrored turns included."""
    mirror, backends, _ = mirror_for(redis, FlagValues(shadow_percent=100), kill_switch=True)
    mirror.submit("legacy", TURN, REPLY, SESSION)
    assert mirror.in_flight == 0
    await mirror.drain()
    assert backends["new"].sent == []


async def test_without_the_kill_switch_the_same_turn_is_mirrored_and_marked(
    redis: Redis,
) -> None:
    mirror, backends, _ = mirror_for(redis, FlagValues(shadow_percent=100))
    mirror.submit("legacy", TURN, REPLY, SESSION)
    assert mirror.in_flight == 1
    await asyncio.wait_for(mirror.drain(), 5)
    assert await redis.xlen("shadow:results") == 1
    [sent] = backends["new"].sent
    assert sent.shadow is True  # the engine answers it from shadow sessions, with no lead
    assert sent.headers == []  # the visitor's cookies and headers are not replayed


@pytest.mark.parametrize(("safe", "mirrored"), [(False, 0), (True, 1)])
async def test_legacy_is_mirrored_to_only_when_marked_safe(
    redis: Redis, safe: bool, mirrored: int
) -> None:
    values = FlagValues(shadow_percent=100, shadow_legacy=safe)
    mirror, backends, registry = mirror_for(redis, values)
    mirror.submit("new", TURN, REPLY, SESSION)
    await asyncio.wait_for(mirror.drain(), 5)
    assert len(backends["legacy"].sent) == mirrored
    assert all(request.shadow for request in backends["legacy"].sent)
    skipped = registry.get_sample_value(
        "gateway_shadow_skipped_total", {"reason": "legacy_not_marked_safe"}
    )
    assert skipped == (None if safe else 1.0)
