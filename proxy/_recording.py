"""Recording legacy conversations for replay (`chatctl replay --recorded`): each recorded turn's
message and legacy's reply fields, encrypted at rest, bounded in size and age, erasable.

- Which conversations: `record_percent` of them, bucketed by conversation (`Flags.recorded`),
  only turns legacy answered; recorded after the visitor's reply is sent, never on its way.
- At rest: each turn is a Fernet token (AES-128-CBC + HMAC-SHA256, from `cryptography`) under
  RECORD_KEY (a Fernet key), else one derived from SESSION_SECRET; unreadable without it.
- Keys: `record:conv:<conversation hash>` (a list, one token per turn, at most `max_turns`) and
  `record:index` (a sorted set of hashes by last turn). The session id itself is never stored.
- Age: every key expires `max_age_seconds` (default 7 days) after its last turn, and tokens older
  than that are refused on reading; size: at most `max_conversations`, the oldest dropped first.
- Erasure: `erase(session id or its hash)` deletes the conversation at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken
from redis.asyncio import Redis

from common import as_text, decode_json, get_logger, keys, redis_store, session_hash
from proxy._settings import RecordingSettings
from proxy._transcript import (
    MAX_MESSAGE_CHARS,
    LegacyReply,
    Transcript,
    Turn,
    conversation_tag,
)
from proxy._upstream import ForwardRequest, UpstreamReply

_log = get_logger("proxy.recording")
_encoder = msgspec.json.Encoder()
_turn_decoder = msgspec.json.Decoder(Turn)


def recorded_turn(message: str, status: int, body: bytes) -> Turn | None:
    """A turn as recorded: the message and legacy's reply fields (None when legacy's reply is
    not the contract's JSON, or the message is not one legacy takes)."""
    try:
        reply = decode_json(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not isinstance(reply, dict) or not message or len(message) > MAX_MESSAGE_CHARS:
        return None
    contact = reply.get("contact")
    legacy: dict[str, Any] = {
        "status": status,
        "category": reply.get("category"),
        "step": reply.get("step"),
        "done": reply.get("done"),
        "reply": reply.get("reply"),
    }
    if isinstance(contact, dict):
        legacy["contact"] = {k: v for k, v in contact.items() if isinstance(v, str)}
    try:
        return Turn(message, msgspec.convert(legacy, LegacyReply))
    except msgspec.ValidationError:
        return None


@redis_store
class TranscriptRecorder:
    def __init__(self, redis: Redis, settings: RecordingSettings) -> None:
        self._redis = redis
        self._fernet = Fernet(settings.key.encode())
        self._settings = settings

    async def record(self, session_id: str, turn: Turn) -> None:
        """Appends one turn to the conversation's record (a conversation already at
        `max_turns` keeps its first turns) and trims what is too old or too many."""
        settings = self._settings
        tag = session_hash(session_id)
        key = keys.recording(tag)
        token = self._fernet.encrypt(_encoder.encode(turn))
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, token)
            pipe.ltrim(key, 0, settings.max_turns - 1)
            pipe.expire(key, settings.max_age_seconds)
            pipe.zadd(keys.RECORDING_INDEX, {tag: now})
            pipe.zrangebyscore(keys.RECORDING_INDEX, "-inf", now - settings.max_age_seconds)
            *_, too_old = await pipe.execute()
        await self._drop(too_old)
        count = await self._redis.zcard(keys.RECORDING_INDEX)
        if count > settings.max_conversations:
            oldest = await self._redis.zrange(
                keys.RECORDING_INDEX, 0, count - settings.max_conversations - 1
            )
            await self._drop(oldest)  # type: ignore[arg-type]

    async def _drop(self, tags: list[bytes]) -> None:
        """Removes conversations from the index and deletes their turns (a conversation only
        unlisted kept its turns until their own, older TTL: a fresh helper, issue 19)."""
        if not tags:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.RECORDING_INDEX, *tags)
            pipe.delete(*(keys.recording(as_text(tag)) for tag in tags))
            await pipe.execute()

    async def load(self, since_seconds: float | None = None) -> tuple[list[Transcript], int]:
        """The recorded conversations (oldest first), each named by its hash, and how many
        recorded turns could not be read (another RECORD_KEY, or older than the age limit):
        those are left out, and a caller says so."""
        settings = self._settings
        now = time.time()
        oldest = now - min(since_seconds or settings.max_age_seconds, settings.max_age_seconds)
        tags: list[bytes] = await self._redis.zrangebyscore(  # type: ignore[assignment]
            keys.RECORDING_INDEX, oldest, "+inf"
        )
        found, unreadable, gone = [], 0, []
        for raw_tag in tags:
            tag = as_text(raw_tag)
            tokens = await self._redis.lrange(keys.recording(tag), 0, -1)
            if not tokens:
                gone.append(raw_tag)  # expired with its TTL: unlisted too
                continue
            turns = []
            for token in tokens:
                try:
                    plain = self._fernet.decrypt(token, ttl=settings.max_age_seconds)
                    turns.append(_turn_decoder.decode(plain))
                except (InvalidToken, msgspec.DecodeError, msgspec.ValidationError):
                    unreadable += 1
            if turns:
                found.append(Transcript(conversation=tag, turns=turns))
        await self._drop(gone)
        return found, unreadable

    async def erase(self, conversation: str) -> bool:
        """Deletes a conversation's record, named by its session id or its 12-hex hash; whether
        there was one."""
        tag = conversation_tag(conversation)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.recording(tag))
            pipe.zrem(keys.RECORDING_INDEX, tag)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def count(self) -> int:
        """Recorded conversations within the age limit."""
        oldest = time.time() - self._settings.max_age_seconds
        return int(await self._redis.zcount(keys.RECORDING_INDEX, oldest, "+inf"))


class _Message(msgspec.Struct):
    message: str = ""


class RecordingTap:
    """What the gateway calls after a visitor got legacy's reply: records the turn when the
    conversation is in `record_percent` (never raises, never delays the visitor; at most
    `max_in_flight` recordings at once, the rest dropped and counted). Turns of a conversation
    are written in order."""

    def __init__(
        self,
        recorder: TranscriptRecorder,
        recorded: Callable[[str], bool],
        dropped: Callable[[str], None],
        max_in_flight: int = 64,
    ) -> None:
        self._recorder = recorder
        self._recorded = recorded
        self._dropped = dropped
        self._max_in_flight = max_in_flight
        self._tails: dict[str, asyncio.Task[None]] = {}

    def submit(self, backend: str, request: ForwardRequest, reply: UpstreamReply,
               session_id: str | None) -> None:  # fmt: skip
        try:
            if backend != "legacy" or not session_id or request.method != "POST":
                return
            if reply.status >= 500 or not self._recorded(session_id):
                return
            if len(self._tails) >= self._max_in_flight:
                self._dropped("busy")
                return
            message = decode_json(request.body, type=_Message).message
            turn = recorded_turn(message, reply.status, reply.body)
            if turn is None:
                self._dropped("not_a_turn")
                return
            previous = self._tails.get(session_id)
            task = asyncio.create_task(self._write(previous, session_id, turn))
            self._tails[session_id] = task
            task.add_done_callback(lambda done: self._finished(session_id, done))
        except Exception as exc:  # a recording never fails a visitor's request
            _log.warning("Recording failed", error=type(exc).__name__)
            self._dropped("error")

    async def _write(
        self, previous: asyncio.Task[None] | None, session_id: str, turn: Turn
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self._recorder.record(session_id, turn)
        except Exception as exc:
            _log.warning("Recording failed", error=type(exc).__name__)
            self._dropped("redis")

    def _finished(self, session_id: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(session_id) is task:
            del self._tails[session_id]

    async def drain(self, within: float = 5.0) -> None:
        if self._tails:
            await asyncio.wait(list(self._tails.values()), timeout=within)
