"""Run-time flags in Redis: read a consistent snapshot, change one flag atomically with its audit
record and announcement, read the audit log back.

A change is one Lua script: old value read, new value written, version bumped, audit entry
appended and the new version published, so no reader ever sees a value without its version and
no change escapes the audit log. Redis failures surface as `common.StoreUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec
from redis.asyncio import Redis

from common import as_text, keys, redis_store
from flags._errors import FlagError
from flags._model import (
    FLAG_NAMES,
    FlagName,
    FlagValue,
    decode_value,
    encode_value,
)

AUDIT_MAX_ENTRIES = 10_000
_LOAD_ATTEMPTS = 5
"""Reads raced by a change in between are repeated; five in a row would take five changes
within a few milliseconds (the last read is used then, at worst one change old)."""

_CHANGE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local version = redis.call('INCR', KEYS[2])
if version <= tonumber(ARGV[8]) then
  version = tonumber(ARGV[8]) + 1
  redis.call('SET', KEYS[2], version)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
  'flag', ARGV[1], 'old', old or '', 'new', ARGV[2], 'actor', ARGV[3], 'reason', ARGV[4],
  'at', ARGV[5], 'version', version, 'source', ARGV[6])
redis.call('PUBLISH', KEYS[4], version)
return {old or '', version}
"""

_REAPPLY = """
local old = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('DEL', KEYS[1])
for i = 7, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
local version = math.max(old, tonumber(ARGV[6])) + 1
redis.call('SET', KEYS[2], version)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
  'flag', 'reapply', 'old', 'v' .. old, 'new', ARGV[1], 'actor', ARGV[2], 'reason', ARGV[3],
  'at', ARGV[4], 'version', version, 'source', 'chatctl')
redis.call('PUBLISH', KEYS[4], version)
return version
"""


class RuntimeFlags(msgspec.Struct, frozen=True):
    values: dict[str, FlagValue]
    version: int
    unreadable: tuple[str, ...] = ()
    """Flags whose stored value could not be parsed (ignored; their defaults apply)."""


class AuditEntry(msgspec.Struct, frozen=True):
    id: str
    flag: str
    old: str
    new: str
    actor: str
    reason: str
    at: float
    version: int
    source: str


class Change(msgspec.Struct, frozen=True):
    flag: str
    old: str
    new: str
    version: int


@redis_store
class FlagStore:
    """Flag values set by operators. Values are validated before they are written."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._change = redis.register_script(_CHANGE)
        self._reapply = redis.register_script(_REAPPLY)

    async def load(self) -> RuntimeFlags:
        """A consistent read: the version before and after the values must agree (a change
        writes both in one script). Not MULTI/EXEC: Redis out of memory refuses every command
        queued in a transaction, reads included, and flags must stay readable then."""
        for _ in range(_LOAD_ATTEMPTS):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.FLAGS_VERSION)
                pipe.hgetall(keys.FLAGS_RUNTIME)
                pipe.get(keys.FLAGS_VERSION)
                before, stored, version = await pipe.execute()
            if before == version:
                break
        values: dict[str, FlagValue] = {}
        unreadable: list[str] = []
        for raw_name, raw_value in stored.items():
            name = as_text(raw_name)
            if name not in FLAG_NAMES:
                unreadable.append(name)
                continue
            try:
                values[name] = decode_value(name, raw_value)
            except FlagError:
                unreadable.append(name)
        return RuntimeFlags(values, int(version or 0), tuple(sorted(unreadable)))

    async def version(self) -> int:
        return int(await self._redis.get(keys.FLAGS_VERSION) or 0)

    async def set(
        self,
        name: FlagName,
        value: FlagValue | None,
        *,
        actor: str,
        reason: str,
        source: str,
        above: int = 0,
    ) -> Change:
        """Sets a flag (None removes the run-time value, so the environment default applies).
        The new version is above `above` (the highest a live gateway applied), so gateways that
        kept newer flags than Redis (see `flags._watcher`) still take this change."""
        encoded = "" if value is None else encode_value(value)
        old, version = await self._change(
            keys=[keys.FLAGS_RUNTIME, keys.FLAGS_VERSION, keys.FLAGS_AUDIT, keys.FLAGS_CHANNEL],
            args=[
                name,
                encoded,
                actor,
                reason,
                f"{time.time():.3f}",
                source,
                AUDIT_MAX_ENTRIES,
                above,
            ],
        )
        return Change(name, as_text(old), encoded, int(version))

    async def reapply(
        self, runtime: Mapping[str, str], *, applied_version: int, actor: str, reason: str
    ) -> Change:
        """Writes a gateway's applied run-time values (encoded, as in `InstanceReport.runtime`)
        back as the whole run-time state, under a version above both Redis's and
        `applied_version`, audited as one `reapply` entry. Raises FlagError for a value that
        does not parse (nothing is written then)."""
        for name, raw in runtime.items():
            if name not in FLAG_NAMES:
                raise FlagError(f"unknown flag {name!r} in the applied state")
            decode_value(name, raw)
        summary = ", ".join(f"{name}={raw}" for name, raw in sorted(runtime.items())) or "(none)"
        pairs = [item for pair in sorted(runtime.items()) for item in pair]
        version = await self._reapply(
            keys=[keys.FLAGS_RUNTIME, keys.FLAGS_VERSION, keys.FLAGS_AUDIT, keys.FLAGS_CHANNEL],
            args=[
                f"v{applied_version}: {summary}",
                actor,
                reason,
                f"{time.time():.3f}",
                AUDIT_MAX_ENTRIES,
                applied_version,
                *pairs,
            ],
        )
        return Change("reapply", "", summary, int(version))

    async def record(
        self, event: str, old: str, new: str, *, actor: str, reason: str, source: str
    ) -> None:
        """An operator action that is not a flag change (nginx switch, data restore), in the same
        audit log so `chatctl flags history` tells the whole story."""
        version = await self.version()
        await self._redis.xadd(
            keys.FLAGS_AUDIT,
            {
                "flag": event,
                "old": old,
                "new": new,
                "actor": actor,
                "reason": reason,
                "at": f"{time.time():.3f}",
                "version": version,
                "source": source,
            },
            maxlen=AUDIT_MAX_ENTRIES,
            approximate=True,
        )

    async def history(self, limit: int = 50) -> list[AuditEntry]:
        """Newest first."""
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await self._redis.xrevrange(
            keys.FLAGS_AUDIT, count=limit
        )  # type: ignore[assignment]
        return [_audit_entry(as_text(entry_id), fields) for entry_id, fields in entries]


def _audit_entry(entry_id: str, fields: Mapping[Any, Any]) -> AuditEntry:
    text = {as_text(k): as_text(v) for k, v in fields.items()}
    return AuditEntry(
        id=entry_id,
        flag=text.get("flag", ""),
        old=text.get("old", ""),
        new=text.get("new", ""),
        actor=text.get("actor", ""),
        reason=text.get("reason", ""),
        at=float(text.get("at", "0") or 0),
        version=int(text.get("version", "0") or 0),
        source=text.get("source", ""),
    )
