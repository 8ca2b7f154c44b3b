"""Where a conversation is pinned, and testers' overrides: signed tokens plus a Redis pin store.

The pin lives in two places that any gateway instance can read: a signed `chat_route` cookie
(`<backend>.<session id>.<mac>`, checked without I/O) and `route:pin:<session id>` in Redis for
clients that send the session id in the body without cookies. Nothing lives in process memory, so
a restart or another instance routes the conversation the same way.

Override tokens (`<tester>.<backend>.<expiry>.<mac>`) are minted by `chatctl flags token` with the
routing secret, and honoured only while the tester is on the run-time allow-list. A forged,
tampered, expired or revoked token is ignored: the visitor is routed like anyone else.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import msgspec
from redis.asyncio import Redis

from common import Signer, decode_json, is_session_id, keys, redis_store
from flags import Backend

ROUTE_COOKIE = "chat_route"
OVERRIDE_COOKIE = "chat_override"
_BACKEND_CODE: dict[str, Backend] = {"n": "new", "l": "legacy"}
_CODE_FOR: dict[Backend, str] = {"new": "n", "legacy": "l"}


class _SessionView(msgspec.Struct):
    """The one field the gateway reads from chat bodies: which conversation this is."""

    sessionId: str | None = None  # noqa: N815 - the public contract's spelling


def session_id_in(body: bytes) -> str | None:
    if not body or body[:1] not in (b"{", b" ", b"\n", b"\t", b"\r"):
        return None
    try:
        found = decode_json(body, type=_SessionView).sessionId
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    return found if is_session_id(found) else None


class RouteCookie(NamedTuple):
    backend: Backend
    session_id: str


class TokenSigner:
    """Routing cookies and override tokens, each MAC'd with its purpose (`common.Signer`, 128
    bits) under the routing secret."""

    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret)

    def mac(self, purpose: str, payload: str) -> str:
        return self._signer.mac(payload, purpose=purpose)

    def check(self, purpose: str, payload: str, mac: str) -> bool:
        return self._signer.verify(payload, mac, purpose=purpose)

    def route_cookie(self, backend: Backend, session_id: str) -> str:
        payload = f"{_CODE_FOR[backend]}.{session_id}"
        return f"{payload}.{self.mac('route', payload)}"

    def read_route_cookie(self, value: str | None) -> RouteCookie | None:
        if not value or len(value) > 200:
            return None
        parts = value.split(".")
        if len(parts) != 3 or parts[0] not in _BACKEND_CODE or not is_session_id(parts[1]):
            return None
        if not self.check("route", f"{parts[0]}.{parts[1]}", parts[2]):
            return None
        return RouteCookie(_BACKEND_CODE[parts[0]], parts[1])

    def override_token(self, tester: str, backend: Backend, expires_at: int) -> str:
        payload = f"{tester}.{_CODE_FOR[backend]}.{expires_at}"
        return f"{payload}.{self.mac('override', payload)}"

    def read_override(
        self, value: str | None, allowed: tuple[str, ...], now: float | None = None
    ) -> Backend | None:
        if not value or len(value) > 200 or not allowed:
            return None
        parts = value.strip().split(".")
        if len(parts) != 4 or parts[1] not in _BACKEND_CODE or not parts[2].isdigit():
            return None
        tester, code, expiry, mac = parts
        if tester not in allowed or int(expiry) < (now or time.time()):
            return None
        if not self.check("override", f"{tester}.{code}.{expiry}", mac):
            return None
        return _BACKEND_CODE[code]


@redis_store
class PinStore:
    """`route:pin:<session id>` -> backend, with a session's TTL (refreshed when read). Redis
    failures surface as `common.StoreUnavailable`."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get_with_evidence(self, session_id: str) -> tuple[Backend | None, bool]:
        """(the pin, whether the new engine holds a session under this id), in one round trip:
        an unpinned id is routed by that evidence, never bucketed (`ChatGateway`)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.getex(keys.route_pin(session_id), ex=self._ttl)
            pipe.exists(keys.session(session_id))
            raw, held = await pipe.execute()
        value = raw.decode() if isinstance(raw, bytes) else raw
        pin = value if value in ("new", "legacy") else None
        return pin, bool(held)  # type: ignore[return-value]

    async def set(self, session_id: str, backend: Backend) -> None:
        await self._redis.set(keys.route_pin(session_id), backend, ex=self._ttl)
