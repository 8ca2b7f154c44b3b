"""The routing flags: their names, types, parsing from operator input, and an immutable snapshot."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal, get_args

import msgspec

from flags._errors import FlagError

FlagName = Literal[
    "enable_new_chat",
    "new_chat_percent",
    "shadow_percent",
    "drain",
    "testers",
    "shadow_legacy",
    "record_percent",
]
FLAG_NAMES: tuple[FlagName, ...] = get_args(FlagName)
FlagValue = bool | int | tuple[str, ...]

_TESTER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")


class FlagValues(msgspec.Struct, frozen=True):
    """Effective routing flags. Defaults here are the safe ones: nobody is moved to the new engine."""

    enable_new_chat: bool = True
    """Run-time master switch. Off: every conversation goes to legacy (except in drain mode)."""
    new_chat_percent: int = 0
    """Share of new conversations that start on the new engine (bucketed by session id)."""
    shadow_percent: int = 0
    """Share of conversations whose turns are mirrored to the other backend."""
    drain: bool = False
    """With the master switch off: conversations already on the new engine finish there."""
    testers: tuple[str, ...] = ()
    """Tester names whose override tokens are honoured; removing a name revokes its tokens."""
    shadow_legacy: bool = False
    """Legacy honours `X-Shadow-Request: 1` (no lead, no real session): only then is it mirrored to."""
    record_percent: int = 0
    """Share of legacy conversations recorded (encrypted, 7 days) for `chatctl replay`."""


class FlagSnapshot(msgspec.Struct, frozen=True):
    """What a gateway routes on: values, the version they came from, and the env kill switch."""

    values: FlagValues
    version: int = 0
    kill_switch: bool = False
    """`ENABLE_NEW_CHAT=false` in the environment: legacy for everyone, whatever Redis says."""
    runtime: frozenset[str] = frozenset()
    """Names of flags set at run time (the rest are environment defaults)."""


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "on", "yes"}:
        return True
    if value in {"0", "false", "off", "no"}:
        return False
    raise FlagError(f"{text!r} is not a boolean (use true or false)")


def _parse_percent(text: str) -> int:
    try:
        value = int(text.strip().rstrip("%"))
    except ValueError:
        raise FlagError(f"{text!r} is not a whole number from 0 to 100") from None
    if not 0 <= value <= 100:
        raise FlagError(f"{value} is out of range: a percentage is from 0 to 100")
    return value


def _parse_testers(text: str) -> tuple[str, ...]:
    names = tuple(sorted({n.strip().lower() for n in text.split(",") if n.strip()}))
    bad = [n for n in names if not _TESTER.fullmatch(n)]
    if bad:
        raise FlagError(
            f"bad tester name(s) {', '.join(bad)}: use lowercase letters, digits, . _ - (max 32)"
        )
    return names


PARSERS: Mapping[FlagName, Callable[[str], FlagValue]] = {
    "enable_new_chat": _parse_bool,
    "new_chat_percent": _parse_percent,
    "shadow_percent": _parse_percent,
    "drain": _parse_bool,
    "testers": _parse_testers,
    "shadow_legacy": _parse_bool,
    "record_percent": _parse_percent,
}

_ALIASES = {
    "new_chat": "enable_new_chat",
    "rollout": "new_chat_percent",
    "shadow": "shadow_percent",
    "record": "record_percent",
}


def flag_name(text: str) -> FlagName:
    """Accepts `new_chat_percent`, `NEW_CHAT_PERCENT`, `new-chat-percent` and short aliases."""
    name = text.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    if name not in FLAG_NAMES:
        raise FlagError(f"unknown flag {text!r}; known flags: {', '.join(FLAG_NAMES)}")
    return name


def parse_value(name: FlagName, text: str) -> FlagValue:
    return PARSERS[name](text)


def encode_value(value: FlagValue) -> str:
    """How a value is stored in Redis and shown in the audit log."""
    return msgspec.json.encode(value).decode()


def decode_value(name: FlagName, raw: str | bytes) -> FlagValue:
    """Reads a stored value back; raises FlagError if someone wrote garbage into Redis by hand."""
    kind = msgspec.structs.fields(FlagValues)[FLAG_NAMES.index(name)].type
    try:
        value: FlagValue = msgspec.json.decode(raw, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise FlagError(f"stored value of {name} is unreadable: {exc}") from None
    return parse_value(name, _as_text(value))


def _as_text(value: FlagValue) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def overlay(defaults: FlagValues, runtime: Mapping[str, FlagValue]) -> FlagValues:
    """Run-time values win over environment defaults."""
    return msgspec.structs.replace(defaults, **runtime)


class EffectiveRouting(msgspec.Struct, frozen=True):
    """What decides routing on one gateway now, and what it says: the truth `flags show`,
    `/readyz` and the metrics give operators (a flag set in Redis is not in force where Unleash
    decides)."""

    decided_by: Literal["unleash", "flags"]
    source: str
    """`env+redis` without Unleash; with it `unleash` (fetched since this gateway started),
    `unleash-cache` (the last state an earlier run fetched) or `bootstrap` (never fetched: the
    env/Redis flags)."""
    new_chat_percent: int
    """The share of new conversations sent to the new engine (before the master switch)."""
    new_chat_enabled: bool
    """The master switch (Redis/env) and, with Unleash, the rollout toggle: both must be on."""
    shadow_percent: int
    detail: str = ""
    """With Unleash: each toggle's strategy and parameters, e.g. `new-chat: flexibleRollout
    groupId=new-chat rollout=30 stickiness=sessionId`."""
    unleash_reachable: bool | None = None
    unleash_environment: str | None = None
    """The environment the gateway's client token reads."""
    fetched_at: float | None = None
    """When the Unleash state in force came from the server."""
