"""The routing decision: pure, in memory, no I/O, never raises. Order of precedence:

env kill switch -> run-time master switch (drain keeps pinned new conversations) -> the session's
pin -> a tester's override -> the rollout (Unleash when configured, else the percentage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import mmh3

from flags._model import FlagSnapshot

Backend = Literal["new", "legacy"]
BACKENDS: tuple[Backend, ...] = ("new", "legacy")
Reason = Literal["kill_switch", "master_off", "drain", "pinned", "evidence", "override", "rollout"]
"""`evidence`: no pin, so the backend that holds the conversation (the gateway's rule)."""
RolloutCheck = Callable[[str], bool]
"""Is this bucketing id inside the new engine's rollout? Must not raise or do I/O."""


class Decision(NamedTuple):
    backend: Backend
    reason: Reason


def bucket(group_id: str, identifier: str) -> int:
    """Unleash's flexibleRollout bucket (1..100): murmur3 x86 32-bit, seed 0, of `group:id`."""
    return int(mmh3.hash(f"{group_id}:{identifier}", 0, signed=False)) % 100 + 1


def percent_rollout(group_id: str, percent: int) -> RolloutCheck:
    """The env/Redis rollout, bucketing exactly as Unleash would, so moving to Unleash moves no one."""
    if percent <= 0:
        return lambda _identifier: False
    if percent >= 100:
        return lambda _identifier: True
    return lambda identifier: bucket(group_id, identifier) <= percent


def decide(
    flags: FlagSnapshot,
    *,
    pin: Backend | None,
    override: Backend | None,
    bucket_id: str,
    in_rollout: RolloutCheck,
) -> Decision:
    if flags.kill_switch:
        return Decision("legacy", "kill_switch")
    if not flags.values.enable_new_chat:
        if flags.values.drain and pin == "new":
            return Decision("new", "drain")
        return Decision("legacy", "master_off")
    if pin is not None:
        return Decision(pin, "pinned")
    if override is not None:
        return Decision(override, "override")
    return Decision("new" if in_rollout(bucket_id) else "legacy", "rollout")
