"""Chat sessions in Redis (`sess:<id>`, msgpack-encoded Structs, TTL refreshed on every save).

Session ids are 144-bit random tokens; the cookie carries the id with an HMAC-SHA256 signature,
checked in constant time. A tampered, unknown or unreadable session starts a fresh one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from typing import Literal

import msgspec
from redis.asyncio import Redis

from newchat import keys
from newchat.categories import Category
from newchat.contact import ContactDetails
from newchat.logs import get_logger
from newchat.redis_values import as_bytes

Step = Literal["describe", "name", "phone", "email", "zip", "done"]
"""What the bot asks for next; `done` once the lead is queued."""

STEPS: tuple[Step, ...] = ("describe", "name", "phone", "email", "zip", "done")

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_log = get_logger("newchat.sessions")


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


def is_well_formed(session_id: object) -> bool:
    return isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id) is not None


def session_hash(session_id: str) -> str:
    """A short, stable, non-reversible tag for logs (the id itself is a bearer secret)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


class CookieSigner:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _signature(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    def sign(self, session_id: str) -> str:
        return f"{session_id}.{self._signature(session_id)}"

    def unsign(self, cookie: str | None) -> str | None:
        """The session id if the signature is right, else None (never raises)."""
        if not cookie or cookie.count(".") != 1:
            return None
        session_id, signature = cookie.split(".")
        if not is_well_formed(session_id):
            return None
        if hmac.compare_digest(signature.encode(), self._signature(session_id).encode()):
            return session_id
        return None


class SessionState(msgspec.Struct, kw_only=True):
    id: str
    created_at: float
    updated_at: float
    step: Step = "describe"
    turns: int = 0
    category: Category | None = None
    confidence: float = 0.0
    detection_method: str | None = None
    description: str = ""
    """The visitor's own account of the problem, sent with the lead (never logged)."""
    describe_asks: int = 0
    contact: ContactDetails = msgspec.field(default_factory=ContactDetails)
    lead_id: str | None = None

    @property
    def done(self) -> bool:
        return self.step == "done"


class SessionStore:
    """Reads and writes session state under one key prefix (real or shadow namespace)."""

    def __init__(
        self,
        redis: Redis,
        ttl_seconds: int = keys.SESSION_TTL_SECONDS,
        key_for: Callable[[str], str] = keys.session,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._key_for = key_for
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(SessionState)

    def new(self, session_id: str | None = None) -> SessionState:
        now = time.time()
        return SessionState(id=session_id or new_session_id(), created_at=now, updated_at=now)

    def key(self, session_id: str) -> str:
        return self._key_for(session_id)

    async def load(self, session_id: str) -> SessionState | None:
        return self.decode(session_id, await self._redis.get(self.key(session_id)))

    def decode(self, session_id: str, raw: bytes | str | None) -> SessionState | None:
        """A session as read from Redis (by `load`, or in a round trip shared with other work)."""
        if raw is None:
            return None
        try:
            return self._decoder.decode(as_bytes(raw))
        except msgspec.DecodeError:
            _log.warning("Unreadable session ignored", session=session_hash(session_id))
            return None

    async def save(self, state: SessionState) -> None:
        """Writes the state and renews the 7-day TTL (runbook: `expire sess:<id> 604800`)."""
        state.updated_at = time.time()
        await self._redis.set(self._key_for(state.id), self._encoder.encode(state), ex=self._ttl)
