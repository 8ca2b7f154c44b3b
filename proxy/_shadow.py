"""Shadow traffic: after the visitor is answered, replay the turn on the other backend, compare.

Guarantees:
- The visitor never waits for, nor fails because of, the shadow: `submit` only schedules work,
  after the response is sent. Work is bounded (`max_in_flight`); beyond it, or while the event
  loop runs late (the CPU is needed for visitors), a turn is dropped and counted, never queued
  without limit. Each mirrored turn runs under a timeout.
- Conversation-level: the shadow side keeps its own session for the conversation (ids in
  `shadow:conv:<primary session id>`), and turns of one conversation are mirrored in order
  within a gateway process.
- Side-effect firewall: a mirrored turn is marked `shadow` (in-process, the engine's typed
  request says so; over HTTP, `X-Shadow-Request: 1`, with the gateway's key for a remote engine)
  and the new engine answers it from `shadow:sess:*` with a lead recorder; legacy is mirrored to
  only when the operator set `shadow_legacy` (it must honour `X-Shadow-Request: 1`), never by
  default.
- Leads: when legacy has taken the lead (`done`) and the new engine waits for the visitor's yes
  to its read-back (`confirm`), the mirror sends that yes itself (`SYNTHETIC_CONFIRMATION`, once)
  so the new engine's (recorded, never queued) lead exists; then both leads are compared value
  by value (keyed hashes) and stored as one result of kind `lead`.
- Noise: for a sample of conversations a twin (the new engine answering the same turn again, in
  its own shadow session) measures how much the new engine disagrees with itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import Any, Literal, NamedTuple

import msgspec
from redis.asyncio import Redis

from common import STORE_FAILURES, ValueDigest, decode_json, get_logger, keys, session_hash
from flags import Backend, Flags, bucket
from proxy._compare import Experiment, FieldResult, Observation, ShadowRules
from proxy._errors import UpstreamError
from proxy._headers import Visitor
from proxy._metrics import GatewayMetrics
from proxy._pressure import LoopLag
from proxy._upstream import ForwardRequest, Upstream, UpstreamReply

_log = get_logger("proxy.shadow")
RESULTS_KEPT = 20_000
CONVERSATION_TTL_SECONDS = 604_800
INCOMPLETE_KEPT = 10_000
SKIPS_IN_FLIGHT = 64
SYNTHETIC_CONFIRMATION = "yes"
"""What the mirror (and `chatctl replay`) answers the new engine's read-back with when legacy
already took the lead: the plainest yes the engine accepts in both languages."""


class _Turn(msgspec.Struct):
    message: str = ""


class ShadowConfig(NamedTuple):
    max_in_flight: int = 64
    timeout_seconds: float = 5.0
    noise_percent: int = 10
    results_kept: int = RESULTS_KEPT
    """About how many comparisons `shadow:results` keeps (Redis trims it approximately)."""


class ShadowResult(msgspec.Struct, frozen=True):
    """One mirrored turn, as stored in `shadow:results` (no personal data)."""

    at: float
    conversation: str
    turn: int
    primary: str
    candidate: str
    fields: dict[str, FieldResult]
    twin: bool
    candidate_error: str | None = None
    kind: Literal["turn", "lead", "skipped"] = "turn"
    """`lead`: the conversation's two leads compared, value by value (once per conversation);
    `skipped`: a turn not mirrored (`candidate_error` says why), after which the conversation
    is not compared any further."""


def lead_taken(observation: Observation) -> bool:
    return isinstance(observation.body, dict) and observation.body.get("done") is True


def awaits_yes(observation: Observation) -> bool:
    """The new engine read the details back and waits for the visitor's yes (`confirm`)."""
    return isinstance(observation.body, dict) and observation.body.get("step") == "confirm"


def lead_of(observation: Observation) -> dict[str, Any] | None:
    """The lead a reply says was taken: its `contact` values when it carries them, `{}` when
    it took one but carries none (a primary new engine's reply), None when it took none."""
    if not lead_taken(observation):
        return None
    contact = observation.body.get("contact")
    return contact if isinstance(contact, dict) else {}


def _decode_json(body: bytes) -> Any:
    try:
        return decode_json(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


async def send_mirrored(
    upstream: Upstream, backend: Backend, message: str, session_id: str | None, visitor: Visitor
) -> tuple[Observation, str | None, str]:
    """One mirrored turn (`ForwardRequest.shadow`: shadow sessions, no lead queued) of
    `message` in the conversation `session_id` (None: a new one): what came back, the
    conversation's id for the next turn, and the outcome (`ok`, `status_5xx` or the upstream
    error's kind). Never raises for the backend's failures. Live shadow and replay both send
    their turns here."""
    body = msgspec.json.encode({"message": message, "sessionId": session_id})
    request = ForwardRequest("POST", b"", [], body, visitor, shadow=True)
    try:
        reply = await upstream.send(request)
    except UpstreamError as exc:
        return Observation(backend, 0, None, exc.kind), session_id, exc.kind
    failed = reply.status >= 500
    observation = Observation(backend, reply.status, _decode_json(reply.body),
                              f"status_{reply.status}" if failed else None)  # fmt: skip
    return observation, reply.session_id or session_id, "status_5xx" if failed else "ok"


class ShadowMirror:
    def __init__(
        self,
        *,
        flags: Flags,
        upstreams: dict[Backend, Upstream],
        redis: Redis,
        rules: ShadowRules,
        metrics: GatewayMetrics,
        config: ShadowConfig,
        pressure: LoopLag | None = None,
        digest: ValueDigest | None = None,
    ) -> None:
        self._pressure = pressure
        self._flags = flags
        self._upstreams = upstreams
        self._redis = redis
        self._metrics = metrics
        self._config = config
        self._experiment = Experiment(rules, self._raised, digest=digest)
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._incomplete: OrderedDict[str, None] = OrderedDict()
        """Conversations with a turn not mirrored (most recent `INCOMPLETE_KEPT`)."""
        self._skips: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Mirrored turns running or waiting for their conversation's previous turn."""
        return len(self._tasks)

    @property
    def conversations_in_flight(self) -> int:
        """Conversations with a mirrored turn in flight (the turn-order map; 0 when idle)."""
        return len(self._tails)

    def submit(
        self,
        primary: Backend,
        request: ForwardRequest,
        reply: UpstreamReply,
        session_id: str | None,
    ) -> None:
        """Called after the visitor got `reply`; schedules the mirror or drops it. Never raises.
        `session_id` is the conversation `reply` names, as `session_id_in` read it (validated:
        it names Redis keys); the gateway reads it only for a POST answered below 500, the
        turns worth mirroring, and passes None otherwise."""
        try:
            self._submit(primary, request, reply, session_id)
        except Exception as exc:
            self._raised("submit", exc)

    def _submit(
        self,
        primary: Backend,
        request: ForwardRequest,
        reply: UpstreamReply,
        session_id: str | None,
    ) -> None:
        if not session_id or not self._flags.shadowed(session_id):
            return
        candidate: Backend = "legacy" if primary == "new" else "new"
        if candidate == "legacy" and not self._flags.snapshot.values.shadow_legacy:
            self._metrics.shadow_skipped.labels(reason="legacy_not_marked_safe").inc()
            return
        reason = (
            "conversation_incomplete"
            if session_id in self._incomplete
            else "busy"
            if len(self._tasks) >= self._config.max_in_flight
            else "cpu"
            if self._pressure is not None and self._pressure.under_pressure
            else None
        )
        if reason is not None:
            # a conversation missing a mirrored turn is not compared further: its shadow side
            # never saw that message, and a dropped turn once hid a ZIP mismatch behind a
            # READY report (a fresh helper, issue 19); the skip is stored for the report
            self._metrics.shadow_skipped.labels(reason=reason).inc()
            self._incomplete[session_id] = None
            while len(self._incomplete) > INCOMPLETE_KEPT:
                self._incomplete.popitem(last=False)
            if reason != "conversation_incomplete" and len(self._skips) < SKIPS_IN_FLIGHT:
                task = asyncio.create_task(self._store_skip(session_id, primary, reason))
                self._skips.add(task)
                task.add_done_callback(self._skips.discard)
            return
        previous = self._tails.get(session_id)
        task = asyncio.create_task(
            self._run(previous, primary, candidate, session_id, request, reply)
        )
        self._tails[session_id] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(session_id, done))

    def _finished(self, session_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(session_id) is task:
            del self._tails[session_id]

    async def drain(self, within: float = 10.0) -> None:
        """Waits for mirrored turns in flight (shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=within)

    async def _run(
        self,
        previous: asyncio.Task[None] | None,
        primary: Backend,
        candidate: Backend,
        session_id: str,
        request: ForwardRequest,
        reply: UpstreamReply,
    ) -> None:
        if previous is not None:
            # Turn order within a conversation. `wait` neither raises the previous turn's
            # failure nor swallows a cancel of this one.
            await asyncio.wait([previous])
        try:
            async with asyncio.timeout(self._config.timeout_seconds):
                await self._mirror(primary, candidate, session_id, request, reply)
        except TimeoutError:
            self._metrics.shadow_requests.labels(backend=candidate, outcome="timeout").inc()
        except STORE_FAILURES as exc:
            self._raised("redis", exc)
        except Exception as exc:
            self._raised("mirror", exc)

    async def _mirror(
        self,
        primary: Backend,
        candidate: Backend,
        session_id: str,
        request: ForwardRequest,
        reply: UpstreamReply,
    ) -> None:
        message = decode_json(request.body, type=_Turn).message
        conversation = keys.shadow_conversation(session_id)
        ids, turn = await self._conversation(conversation)
        with_twin = bucket("shadow-noise", session_id) <= self._config.noise_percent
        runs = [self._send(candidate, message, ids.get("candidate"), request)]
        if with_twin:
            runs.append(self._send("new", message, ids.get("twin"), request))
        observed = await asyncio.gather(*runs)
        candidate_obs, candidate_sid = observed[0]
        twin_obs, twin_sid = observed[1] if with_twin else (None, None)
        await self._remember(conversation, candidate_sid, twin_sid)
        control = Observation(primary, reply.status, _decode_json(reply.body))
        fields = self._experiment.compare(control, candidate_obs, twin_obs)
        if fields is None:
            return
        result = ShadowResult(
            at=time.time(),
            conversation=session_hash(session_id),
            turn=turn,
            primary=primary,
            candidate=candidate,
            fields=fields,
            twin=twin_obs is not None,
            candidate_error=candidate_obs.error,
        )
        await self._publish(result)
        legacy, new = (control, candidate_obs) if primary == "legacy" else (candidate_obs, control)
        if candidate == "new" and lead_taken(legacy) and awaits_yes(new):
            new, _ = await self._send("new", SYNTHETIC_CONFIRMATION, candidate_sid, request)
        # once the visitor's own side has taken the lead (its conversation is over), compare
        # the two leads; a side with none lost it
        if lead_taken(control) and await self._first_lead(conversation):
            lead_fields = self._experiment.compare_leads(lead_of(legacy), lead_of(new))
            if lead_fields:
                await self._publish(msgspec.structs.replace(result, fields=lead_fields,
                                                            kind="lead"))  # fmt: skip

    async def _store_skip(self, session_id: str, primary: Backend, reason: str) -> None:
        """A turn not mirrored, as a result of kind `skipped` (the report counts them)."""
        candidate = "legacy" if primary == "new" else "new"
        skipped = ShadowResult(at=time.time(), conversation=session_hash(session_id), turn=0,
                               primary=primary, candidate=candidate, fields={}, twin=False,
                               candidate_error=reason, kind="skipped")  # fmt: skip
        with contextlib.suppress(*STORE_FAILURES):
            await self._redis.xadd(keys.SHADOW_RESULTS, {"result": msgspec.json.encode(skipped)},
                                   maxlen=self._config.results_kept, approximate=True)  # fmt: skip

    async def _first_lead(self, key: str) -> bool:
        """True once per mirrored conversation: its leads are compared one time."""
        return bool(await self._redis.hsetnx(key, "lead", "1"))

    async def _conversation(self, key: str) -> tuple[dict[str, str], int]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "turns", 1)
            pipe.hgetall(key)
            pipe.expire(key, CONVERSATION_TTL_SECONDS)
            turn, stored, _ = await pipe.execute()
        ids = {k.decode(): v.decode() for k, v in stored.items() if k != b"turns"}
        return ids, int(turn)

    async def _remember(self, key: str, candidate_sid: str | None, twin_sid: str | None) -> None:
        mapping: dict[str | bytes, str | bytes] = {
            name: sid for name, sid in (("candidate", candidate_sid), ("twin", twin_sid)) if sid
        }
        if mapping:
            await self._redis.hset(key, mapping=mapping)  # type: ignore[arg-type]

    async def _send(
        self, backend: Backend, message: str, session_id: str | None, visitor: ForwardRequest
    ) -> tuple[Observation, str | None]:
        observation, next_id, outcome = await send_mirrored(
            self._upstreams[backend], backend, message, session_id, visitor.visitor
        )
        self._metrics.shadow_requests.labels(backend=backend, outcome=outcome).inc()
        return observation, next_id

    async def _publish(self, result: ShadowResult) -> None:
        differing = []
        for name, field in result.fields.items():
            self._metrics.shadow_comparisons.labels(field=name, outcome=field.outcome).inc()
            if field.outcome == "mismatch":
                differing.append(name)
        await self._redis.xadd(
            keys.SHADOW_RESULTS,
            {"result": msgspec.json.encode(result)},
            maxlen=self._config.results_kept,
            approximate=True,
        )
        if differing:
            reply_field = result.fields.get("reply")
            _log.info(
                "shadow_diff",
                conversation=result.conversation,
                turn=result.turn,
                primary=result.primary,
                candidate=result.candidate,
                fields=differing,
                similarity=reply_field.similarity if reply_field else None,
            )

    def _raised(self, operation: str, error: Exception) -> None:
        """Every failure of shadow work ends here: counted and logged, never raised."""
        self._metrics.shadow_hook_errors.labels(operation=operation).inc()
        _log.warning("Shadow work failed", operation=operation, error=type(error).__name__)
