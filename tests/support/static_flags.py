"""Flags over a fixed snapshot, for code that only reads flags (no Redis, no watcher task)."""

from __future__ import annotations

from flags import Flags, FlagSnapshot, FlagValues, FlagWatcher


class StaticWatcher(FlagWatcher):
    def __init__(self, snapshot: FlagSnapshot) -> None:
        self.snapshot = snapshot


def static_flags(
    values: FlagValues, *, kill_switch: bool = False, group_id: str = "new-chat"
) -> Flags:
    snapshot = FlagSnapshot(values, version=1, kill_switch=kill_switch)
    return Flags(StaticWatcher(snapshot), group_id=group_id)
