"""Event-loop lag: a busy loop is seen as pressure, and the signal clears when the loop is idle."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from flags import FlagValues
from proxy import (
    ForwardRequest,
    GatewayMetrics,
    LoopLag,
    ShadowConfig,
    ShadowMirror,
    UpstreamReply,
    Visitor,
    load_rules,
)
from tests.support.static_flags import static_flags


async def test_a_blocked_loop_is_pressure_and_an_idle_one_is_not() -> None:
    lag = LoopLag(interval=0.01, threshold=0.01)
    await lag.start()
    try:
        await asyncio.sleep(0.05)
        assert not lag.under_pressure
        for _ in range(3):
            time.sleep(0.06)  # a CPU-bound stretch: the ticker wakes up late  # noqa: ASYNC251
            await asyncio.sleep(0.011)
        assert lag.under_pressure
        for _ in range(100):
            if not lag.under_pressure:
                break
            await asyncio.sleep(0.011)
        assert not lag.under_pressure
    finally:
        await lag.stop()


class _NeverCalled:
    async def send(self, request: ForwardRequest) -> UpstreamReply:
        raise AssertionError("a dropped turn must not reach a backend")


async def test_mirror_drops_turns_while_the_loop_is_late() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    flags = static_flags(FlagValues(shadow_percent=100), group_id="g")
    lag = LoopLag(threshold=0.003)
    lag.observe(0.5)  # the loop is running half a second late
    mirror = ShadowMirror(
        flags=flags,
        upstreams={"new": _NeverCalled(), "legacy": _NeverCalled()},
        redis=None,  # type: ignore[arg-type]
        rules=load_rules(),
        metrics=metrics,
        config=ShadowConfig(),
        pressure=lag,
    )
    visitor = Visitor("198.51.100.7", "http", "198.51.100.7", False, {})
    request = ForwardRequest("POST", b"", [], b'{"message": "hi"}', visitor)
    reply = UpstreamReply(200, [], b'{"sessionId": "abcdefgh12345678", "step": "name"}')
    mirror.submit("legacy", request, reply, "abcdefgh12345678")
    assert mirror.in_flight == 0
    assert registry.get_sample_value("gateway_shadow_skipped_total", {"reason": "cpu"}) == 1.0
