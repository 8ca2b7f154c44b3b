"""The lead as it travels through Redis (JSON, readable with redis-cli) and to LeadProsper."""

from __future__ import annotations

import time
import uuid

import msgspec

from newchat._categories import Category


class Lead(msgspec.Struct, kw_only=True):
    id: str = msgspec.field(default_factory=lambda: uuid.uuid4().hex)
    idempotency_key: str
    """One lead per chat session: a retried request or a re-queued copy maps to the same key."""
    created_at: float = msgspec.field(default_factory=time.time)
    attempts: int = 0
    last_error: str | None = None
    first_name: str
    last_name: str
    email: str
    phone: str
    zip: str
    category: Category
    description: str = ""
    session_hash: str = ""
    language: str = "en"
    """The conversation's language (ISO 639-1: "en", "es"), so the attorney calls in it."""


class FailedEnvelope(msgspec.Struct):
    """Value of `lead_failed[id]`: the lead plus why it gave up."""

    failed_at: float
    error: str
    lead: Lead


lead_encoder = msgspec.json.Encoder()
lead_decoder = msgspec.json.Decoder(Lead)
