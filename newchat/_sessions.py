"""Chat sessions in Redis (`sess:<id>`, msgpack-encoded Structs, TTL refreshed on every save)
and the signed session cookie.

Session ids the engine mints are 96 random bits followed by a 48-bit HMAC of them (24 URL-safe
characters, `SessionCookies.mint_id`): the gateway can tell an id this engine issued from any
other without Redis, so a conversation that started here stays here when its pin cannot be read,
and a visitor cannot pick the new engine by inventing an id. The cookie carries the id with
an HMAC-SHA256 (`common.Signer`, 192 bits over the bare id), checked in constant time. A
tampered, unknown or unreadable session starts a fresh one. Redis failures surface as
`common.StoreUnavailable`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Literal

import msgspec
from redis.asyncio import Redis

from common import (
    REDIS_FAILURES,
    Signer,
    as_bytes,
    get_logger,
    is_session_id,
    keys,
    new_session_id,
    session_hash,
    set_cookie,
    translate_redis_error,
)
from newchat._categories import Category
from newchat._language import DEFAULT_LANGUAGE, Language
from newchat._settings import SessionSettings
from newchat.contact import ContactDetails

Step = Literal["describe", "name", "phone", "email", "zip", "confirm", "done"]
"""What the bot asks for next; `confirm` while it reads the details back, `done` once the lead
is queued."""

STEPS: tuple[Step, ...] = ("describe", "name", "phone", "email", "zip", "confirm", "done")
_MAC_BYTES = 24
_ID_RANDOM_BYTES = 12
_ID_RANDOM_CHARS = 16
_ID_MAC_BYTES = 6
_ID_PURPOSE = "session-id"
_log = get_logger("newchat.sessions")


class SessionCookies:
    """The `chat_sid` cookie (`<session id>.<MAC>`, written with `common.set_cookie`) and the
    session ids the engine mints, both under `SESSION_SECRET`."""

    def __init__(self, settings: SessionSettings) -> None:
        self._signer = Signer(settings.secret)
        self._settings = settings

    def mint_id(self) -> str:
        """A new session id: 16 random characters and 8 of their MAC (see the module docstring)."""
        random_part = secrets.token_urlsafe(_ID_RANDOM_BYTES)
        return random_part + self._signer.mac(random_part, purpose=_ID_PURPOSE, size=_ID_MAC_BYTES)

    def minted(self, session_id: str) -> bool:
        """Whether this engine (this SESSION_SECRET) minted `session_id`; constant time."""
        if len(session_id) != _ID_RANDOM_CHARS + 8 or not is_session_id(session_id):
            return False
        random_part, mac = session_id[:_ID_RANDOM_CHARS], session_id[_ID_RANDOM_CHARS:]
        return self._signer.verify(random_part, mac, purpose=_ID_PURPOSE, size=_ID_MAC_BYTES)

    def sign(self, session_id: str) -> str:
        return f"{session_id}.{self._signer.mac(session_id, size=_MAC_BYTES)}"

    def unsign(self, cookie: str | None) -> str | None:
        """The session id if the MAC is right, else None (never raises)."""
        if not cookie or cookie.count(".") != 1:
            return None
        session_id, mac = cookie.split(".")
        if not is_session_id(session_id):
            return None
        return session_id if self._signer.verify(session_id, mac, size=_MAC_BYTES) else None

    def set_cookie(self, session_id: str) -> str:
        """The `Set-Cookie` value that carries this session."""
        s = self._settings
        return set_cookie(
            s.cookie_name, self.sign(session_id), max_age=s.ttl_seconds, secure=s.cookie_secure
        )


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
    doubted_email: str | None = None
    """The address last held back as a likely typo: sent again, it is taken as it is."""
    suggested_email: str | None = None
    """The spelling the bot just suggested ("Did you mean ann@gmail.com?"): a yes takes it."""
    language: Language = DEFAULT_LANGUAGE
    """The language the bot answers in; follows the visitor (`Conversation`)."""
    language_set: bool = False
    """Whether a message has said which language (until then, one word may set it)."""
    without_email: bool = False
    """The visitor said they have no email address: the lead goes without one (phone only)."""
    language_words: dict[str, int] = msgspec.field(default_factory=dict)
    """Words the visitor wrote in each language, over the conversation (`Conversation`)."""
    language_asked: Language | None = None
    """The language the visitor asked for in so many words ("en español, por favor")."""

    @property
    def lead_language(self) -> Language:
        """The language the attorney should call in: the one asked for, else the one most of
        the visitor's words were in (a last "Yes correct" does not make a Spanish speaker's
        lead English), else the reply language."""
        if self.language_asked is not None:
            return self.language_asked
        if not self.language_words:
            return self.language
        most = max(self.language_words.values())
        leaders = [lang for lang, n in self.language_words.items() if n == most]
        return self.language if self.language in leaders or len(leaders) > 1 else leaders[0]  # type: ignore[return-value]

    @property
    def done(self) -> bool:
        return self.step == "done"


def new_session_state(session_id: str | None = None) -> SessionState:
    """A conversation's first state, under `session_id` (a new random one by default), last
    updated when it began."""
    now = time.time()
    return SessionState(id=session_id or new_session_id(), created_at=now, updated_at=now)


class SessionStore:
    """Reads and writes session state under one key prefix (real or shadow namespace)."""

    def __init__(
        self,
        redis: Redis,
        ttl_seconds: int = keys.SESSION_TTL_SECONDS,
        key_for: Callable[[str], str] = keys.session,
        mint_id: Callable[[], str] = new_session_id,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._key_for = key_for
        self._mint_id = mint_id
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(SessionState)

    def new(self) -> SessionState:
        return new_session_state(self._mint_id())

    def key(self, session_id: str) -> str:
        return self._key_for(session_id)

    async def load(self, session_id: str) -> SessionState | None:
        try:
            raw = await self._redis.get(self.key(session_id))
        except REDIS_FAILURES as exc:
            raise translate_redis_error(exc) from exc
        return self.decode(session_id, raw)

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
        try:
            await self._redis.set(
                self._key_for(state.id), self._encoder.encode(state), ex=self._ttl
            )
        except REDIS_FAILURES as exc:
            raise translate_redis_error(exc) from exc
