"""Every Redis key name the project uses, in one place (names from the runbook where it has them).

Everything else imports these; nothing builds a key by hand.
"""

from __future__ import annotations

SESSION_PREFIX = "sess:"
SHADOW_SESSION_PREFIX = "shadow:sess:"
LEAD_QUEUE = "lead_queue"
LEAD_PROCESSING = "lead_processing"
LEAD_FAILED = "lead_failed"
LEAD_RETRY = "lead_retry"
"""Sorted set of leads waiting out a retry backoff (score: when they may run again)."""
LEAD_IDEMPOTENCY_PREFIX = "lead_idem:"
"""Marks an idempotency key as enqueued, so a retried chat request queues its lead once."""
LEAD_DONE_PREFIX = "lead_done:"
"""Marks a lead as submitted, so a re-queued copy is acknowledged instead of sent again."""
WORKER_HEARTBEAT_PREFIX = "worker:heartbeat:"
EMERGENCY_RATE_LIMIT = "emergency_rate_limit"
RATE_LIMIT_PREFIX = "ratelimit:"

FLAGS_RUNTIME = "flags:runtime"
"""Hash of run-time flag values set by operators (field: flag name, value: JSON)."""
FLAGS_VERSION = "flags:version"
"""Counter bumped by every flag change; gateways compare it to know they are current."""
FLAGS_AUDIT = "flags:audit"
"""Capped stream of flag changes: who, when, flag, old -> new, reason, version."""
FLAGS_CHANNEL = "flags:changed"
"""Pub/sub channel announcing a new flag version to every gateway instance."""
GATEWAY_INSTANCE_PREFIX = "gateway:instance:"
"""One key per live gateway instance (TTL'd), holding the flag version it runs on."""
SHADOW_LEADS = "shadow:leads"
"""Capped list of leads a shadow conversation would have submitted (no contact details)."""
SHADOW_CONVERSATION_PREFIX = "shadow:conv:"
"""Hash per mirrored conversation: the shadow sides' session ids and the turn count."""
SHADOW_RESULTS = "shadow:results"
"""Capped stream of shadow comparisons (one entry per mirrored turn) for `chatctl shadow report`."""
REPLAY_SESSION_PREFIX = "replay:sess:"
"""A replayed conversation's session on the new engine: deleted once compared, an hour at most."""
REPLAY_LEADS = "replay:leads"
"""Capped list of the leads replayed conversations made (hashed values only), apart from live
shadow's `shadow:leads`."""
RECORDING_PREFIX = "record:conv:"
"""Per recorded legacy conversation (by its hash): encrypted turns for `chatctl replay`."""
RECORDING_INDEX = "record:index"
"""Sorted set of recorded conversations' hashes by the time of their last turn."""
GATEWAY_STATS_PREFIX = "gateway:stats:"
"""Per gateway instance: cumulative new-engine attempts, failures and latency buckets (TTL'd)."""
GUARDIAN_LAST_TRIP = "guardian:last_trip"
"""When and why the guardian last switched the new engine off."""
HEALTH_PROBE = "health:probe"
"""Written by every health check (10 s TTL): a PING passes where a write fails (out of memory,
read-only replica), and a check that cannot write must say so."""
ROUTE_PIN_PREFIX = "route:pin:"
"""The backend a chat session started on (`new` or `legacy`); TTL as a session's."""

SESSION_TTL_SECONDS = 604_800
LEAD_MARKER_TTL_SECONDS = 30 * 86_400
"""How long `lead_done:<id>` and `lead_idem:<key>` outlive a lead: a backup older than this may
name leads whose markers are gone, and restoring it would send them again."""


def session(session_id: str) -> str:
    return f"{SESSION_PREFIX}{session_id}"


def replay_session(session_id: str) -> str:
    return f"{REPLAY_SESSION_PREFIX}{session_id}"


def recording(conversation_hash: str) -> str:
    return f"{RECORDING_PREFIX}{conversation_hash}"


def shadow_session(session_id: str) -> str:
    return f"{SHADOW_SESSION_PREFIX}{session_id}"


def lead_idempotency(key: str) -> str:
    return f"{LEAD_IDEMPOTENCY_PREFIX}{key}"


def lead_done(lead_id: str) -> str:
    return f"{LEAD_DONE_PREFIX}{lead_id}"


def worker_heartbeat(worker_id: str) -> str:
    return f"{WORKER_HEARTBEAT_PREFIX}{worker_id}"


def rate_limit(client_key: str, window: int) -> str:
    return f"{RATE_LIMIT_PREFIX}{client_key}:{window}"


def gateway_instance(instance_id: str) -> str:
    return f"{GATEWAY_INSTANCE_PREFIX}{instance_id}"


def route_pin(session_id: str) -> str:
    return f"{ROUTE_PIN_PREFIX}{session_id}"


def shadow_conversation(primary_session_id: str) -> str:
    return f"{SHADOW_CONVERSATION_PREFIX}{primary_session_id}"


def gateway_stats(instance_id: str) -> str:
    return f"{GATEWAY_STATS_PREFIX}{instance_id}"
