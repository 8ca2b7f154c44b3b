"""The shadow mirror's own work, on the real Redis: what each mirrored turn counts and stores,
turn order within a conversation, the in-flight bound, the noise twin's sample, a drain that
does not wait forever, and every failure caught and named."""

from __future__ import annotations

import asyncio

import msgspec
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from common import RedisSettings, keys, open_redis, session_hash
from flags import Backend, FlagValues, bucket
from proxy import (
    ForwardRequest,
    GatewayMetrics,
    ShadowConfig,
    ShadowMirror,
    ShadowResult,
    ShadowRules,
    UpstreamError,
    UpstreamReply,
    load_rules,
    session_id_in,
)
from tests.support.processes import free_port
from tests.support.shadow_turns import REPLY, SESSION, VISITOR
from tests.support.static_flags import static_flags

Answer = tuple[int, bytes] | str


def turn(message: str = "hi") -> ForwardRequest:
    return ForwardRequest("POST", b"", [], msgspec.json.encode({"message": message}), VISITOR)


class Scripted:
    """A backend that answers from a script, in order (the last answer repeats): a status and
    body, or the kind of an `UpstreamError`; the first answer can be held back."""

    def __init__(
        self, *answers: Answer, first_delay: float = 0.0, delays: dict[int, float] | None = None
    ) -> None:
        self.answers = list(answers) or [
            (200, b'{"sessionId": "shadowsession0001", "step": "name"}')
        ]
        self.first_delay = first_delay
        self.delays = dict(delays or {})
        """Call number -> seconds held back before the request is even recorded."""
        self.calls = 0
        self.sent: list[ForwardRequest] = []

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        self.calls += 1
        await asyncio.sleep(self.delays.get(self.calls, 0.0))
        self.sent.append(request)
        if len(self.sent) == 1 and self.first_delay:
            await asyncio.sleep(self.first_delay)
        answer = self.answers[min(len(self.sent), len(self.answers)) - 1]
        if isinstance(answer, str):
            raise UpstreamError(answer, "scripted")  # type: ignore[arg-type]
        status, body = answer
        return UpstreamReply(status, [], body, session_id_in(body))

    def messages(self) -> list[str]:
        return [msgspec.json.decode(r.body)["message"] for r in self.sent]

    def session_ids(self) -> list[str | None]:
        return [msgspec.json.decode(r.body).get("sessionId") for r in self.sent]


class Mirrored:
    def __init__(
        self,
        redis: Redis,
        new: Scripted,
        pressure: object = None,
        shadow_percent: int = 100,
        rules: ShadowRules | None = None,
        **config: float,
    ) -> None:
        self.registry = CollectorRegistry()
        self.new = new
        self.flags = static_flags(FlagValues(shadow_percent=shadow_percent))
        self.mirror = ShadowMirror(
            flags=self.flags,
            upstreams={"new": new, "legacy": Scripted()},  # type: ignore[dict-item]
            redis=redis,
            rules=rules or load_rules(),
            metrics=GatewayMetrics(self.registry),
            config=ShadowConfig(**{"noise_percent": 0, **config}),  # type: ignore[arg-type]
            pressure=pressure,  # type: ignore[arg-type]
        )

    def count(self, metric: str, **labels: str) -> float:
        return self.registry.get_sample_value(metric, labels) or 0.0

    def submit(
        self, session_id: str = SESSION, primary: Backend = "legacy", message: str = "hi"
    ) -> None:
        self.mirror.submit(primary, turn(message), REPLY, session_id)


async def stored(redis: Redis) -> list[ShadowResult]:
    entries = await redis.xrange(keys.SHADOW_RESULTS)
    return [msgspec.json.decode(fields[b"result"], type=ShadowResult) for _, fields in entries]


async def test_each_mirrored_turn_is_counted_by_outcome_and_stored_with_its_error(
    redis: Redis,
) -> None:
    ok = (200, b'{"sessionId": "shadowsession0001", "step": "name"}')
    new = Scripted(ok, (500, b'{"error": "internal"}'), (503, b"{}"), "timeout", ok)
    shadow = Mirrored(redis, new)
    for _ in range(5):
        shadow.submit()
        await shadow.mirror.drain()
    requests = "gateway_shadow_requests_total"
    assert shadow.count(requests, backend="new", outcome="ok") == 2
    assert shadow.count(requests, backend="new", outcome="status_5xx") == 2  # 500 is one
    assert shadow.count(requests, backend="new", outcome="timeout") == 1
    results = await stored(redis)
    assert [r.candidate_error for r in results] == [
        None,
        "status_500",
        "status_503",
        "timeout",
        None,
    ]
    assert [r.fields["status"].candidate for r in results] == [200, 500, 503, 0, 200]  # 0: none
    assert [r.turn for r in results] == [1, 2, 3, 4, 5]
    assert {(r.conversation, r.primary, r.candidate, r.twin) for r in results} == {
        (session_hash(SESSION), "legacy", "new", False)
    }
    [first, *_] = new.sent
    assert (first.method, first.query, first.headers, first.shadow) == ("POST", b"", [], True)
    assert shadow.mirror.in_flight == 0


async def test_turns_of_one_conversation_are_mirrored_in_order(redis: Redis) -> None:
    """The second turn waits for the first, so it goes on in the candidate's own session."""
    new = Scripted(first_delay=0.2)
    shadow = Mirrored(redis, new)
    shadow.submit()
    shadow.submit()
    assert shadow.mirror.in_flight == 2
    await shadow.mirror.drain()
    assert new.session_ids() == [None, "shadowsession0001"]
    assert [r.turn for r in await stored(redis)] == [1, 2]
    assert (shadow.mirror.in_flight, shadow.mirror.conversations_in_flight) == (0, 0)

    shadow.submit()  # the conversation's finished turns are forgotten: the next one runs at once
    await shadow.mirror.drain()
    assert new.session_ids()[-1] == "shadowsession0001"


async def test_no_more_turns_in_flight_than_the_bound(redis: Redis) -> None:
    shadow = Mirrored(redis, Scripted(first_delay=0.1), max_in_flight=1)
    shadow.submit("conversation0001")
    shadow.submit("conversation0002")  # the bound is reached: skipped, not queued
    await shadow.mirror.drain()
    assert len(shadow.new.sent) == 1
    assert shadow.count("gateway_shadow_skipped_total", reason="busy") == 1
    shadow.submit("conversation0003")  # the slot is free again
    await shadow.mirror.drain()
    assert len(shadow.new.sent) == 2


async def test_the_noise_twin_is_sent_for_its_own_sample_of_conversations(redis: Redis) -> None:
    """The twin goes with conversations whose `shadow-noise` bucket is within `noise_percent`
    (edge included), each conversation counting its own turns."""
    edge = next(
        f"conversation{n:04d}"
        for n in range(1000)
        if bucket("shadow-noise", f"conversation{n:04d}") == 30
    )
    conversations = [edge, *(f"conversation{n:04d}" for n in range(2000, 2010))]
    shadow = Mirrored(redis, Scripted(), noise_percent=30)
    for conversation in conversations:
        shadow.submit(conversation)
    await shadow.mirror.drain()
    expected = {session_hash(c): bucket("shadow-noise", c) <= 30 for c in conversations}
    results = await stored(redis)
    assert {r.conversation: r.twin for r in results} == expected
    assert len(shadow.new.sent) == len(conversations) + sum(expected.values())
    assert {r.turn for r in results} == {1}  # one turn each, counted per conversation


async def test_only_the_shadow_sample_of_conversations_is_mirrored(redis: Redis) -> None:
    shadow = Mirrored(redis, Scripted(), shadow_percent=50)
    conversations = [f"conversation{n:04d}" for n in range(3000, 3012)]
    for conversation in conversations:
        shadow.submit(conversation)
    await shadow.mirror.drain()
    sample = {session_hash(c) for c in conversations if shadow.flags.shadowed(c)}
    assert 0 < len(sample) < len(conversations)
    assert {r.conversation for r in await stored(redis)} == sample


async def test_a_drain_waits_only_as_long_as_it_is_told(redis: Redis) -> None:
    shadow = Mirrored(redis, Scripted(first_delay=0.5), timeout_seconds=3.0)
    shadow.submit()
    await shadow.mirror.drain(within=0.05)
    assert shadow.mirror.in_flight == 1  # still going: the drain gave up waiting, not the turn
    await shadow.mirror.drain()
    assert shadow.mirror.in_flight == 0


async def test_every_failure_of_shadow_work_is_caught_and_named(redis: Redis) -> None:
    errors = "gateway_shadow_errors_total"

    class BrokenGauge:
        @property
        def under_pressure(self) -> bool:
            raise RuntimeError("the loop-lag gauge broke")

    shadow = Mirrored(redis, Scripted(), pressure=BrokenGauge())
    shadow.submit()
    assert shadow.count(errors, operation="submit") == 1
    assert shadow.mirror.in_flight == 0
    shadow = Mirrored(redis, Scripted())

    garbled = ForwardRequest("POST", b"", [], b'{"message": 5}', VISITOR)
    shadow.mirror.submit("legacy", garbled, REPLY, SESSION)
    await shadow.mirror.drain()
    assert shadow.count(errors, operation="mirror") == 1

    down = open_redis(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"))
    offline = Mirrored(down, Scripted())
    offline.submit()
    await offline.mirror.drain()
    assert offline.count(errors, operation="redis") == 1
    assert offline.new.sent == []  # nothing mirrored without the conversation's state
    await down.aclose()
    assert await stored(redis) == []


async def test_a_turn_waits_for_the_latest_one_not_the_first(redis: Redis) -> None:
    new = Scripted(delays={1: 0.05, 2: 0.3})
    shadow = Mirrored(redis, new)
    shadow.submit(message="one")
    shadow.submit(message="two")
    async with asyncio.timeout(2):
        while shadow.mirror.in_flight > 1:  # "one" is done, "two" is held back
            await asyncio.sleep(0.01)
    shadow.submit(message="three")
    await shadow.mirror.drain()
    assert new.messages() == ["one", "two", "three"]
    assert shadow.mirror.conversations_in_flight == 0


async def test_a_comparison_that_fails_is_counted_and_the_turn_still_stored(redis: Redis) -> None:
    """A rule that cannot apply to the replies (a set comparison of a bool) makes the comparison
    raise: it is counted under `compare`, and the turn is not lost."""
    rules = msgspec.convert(
        {"fields": [{"name": "done", "keys": ["done"], "rule": "set_equal"}]}, ShadowRules
    )
    new = Scripted((200, b'{"sessionId": "shadowsession0001", "step": "name", "done": false}'))
    shadow = Mirrored(redis, new, rules=rules)
    shadow.mirror.submit("legacy", turn(), REPLY._replace(body=REPLY.body[:-1] + b', "done": true}'),
                         SESSION)  # fmt: skip
    await shadow.mirror.drain()
    assert shadow.count("gateway_shadow_errors_total", operation="compare") == 1
    assert new.calls == 1


async def test_stored_comparisons_are_trimmed_to_about_the_configured_number(
    redis: Redis,
) -> None:
    """Redis trims a stream approximately, a whole node (100 entries) at a time."""
    shadow = Mirrored(redis, Scripted(), results_kept=10)
    for n in range(250):
        shadow.submit(session_id=f"conversation{n:05d}")
        if n % 50 == 49:
            await shadow.mirror.drain()
    await shadow.mirror.drain()
    assert await redis.xlen(keys.SHADOW_RESULTS) <= 110


async def test_a_mirrored_turn_is_given_up_after_the_shadow_timeout(redis: Redis) -> None:
    """A candidate that never answers (past its own hop timeout too) is abandoned at
    `timeout_seconds`: counted as a timeout, nothing stored, nothing left in flight."""
    shadow = Mirrored(redis, Scripted(first_delay=30.0), timeout_seconds=0.2)
    shadow.submit()
    await shadow.mirror.drain(within=5.0)
    assert shadow.mirror.in_flight == 0
    assert shadow.count("gateway_shadow_requests_total", backend="new", outcome="timeout") == 1
    assert await stored(redis) == []
