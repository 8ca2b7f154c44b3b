"""The shape of a health check, shared by the engine's `GET /api/chat`, the gateway's `/readyz`
and `chatctl health`: each check says whether it passed, what was seen and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

Status = Literal["ok", "degraded", "down"]


class Check(msgspec.Struct, omit_defaults=True):
    ok: bool
    detail: str = ""
    action: str = ""
    latency_ms: float | None = None
    critical: bool = False
    """A failure that stops the service (not just a feature): the overall status is `down`."""
    configured: bool = True
    """False: the feature is not set up here (not a failure; `detail` says what it would need)."""


def overall(checks: Mapping[str, Check]) -> tuple[Status, list[str]]:
    """`down` when a critical check fails, `degraded` when another does, else `ok`; and the
    names of the failing checks."""
    failing = [name for name, check in checks.items() if not check.ok]
    if any(checks[name].critical for name in failing):
        return "down", failing
    return ("degraded" if failing else "ok"), failing
