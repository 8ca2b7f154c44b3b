"""What every command shares: the environment (with a running `make run` stack's settings),
settings or a usage error, one Redis connection or the engine's services for the command, a
clean message (not a traceback) when Redis fails, output, and the actor of audited changes.

Exit status, for every command: 0 on verified success, 1 when a check or an operation failed
(Redis down included), 2 on bad usage or settings.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import shlex
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common import (
    LogSettings,
    SettingsError,
    StoreUnavailable,
    configure_logging,
    open_redis,
    redacted_url,
    translate_redis_error,
)
from newchat import Services, Settings, load_settings, open_services

T = TypeVar("T")

STACK_ENV_FILE = Path("var/stack.env")
"""Written by `chatctl stack` (`make run`) while it runs: its ports, Redis URL and secrets."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines (shell-quoted values, `#` comments), as `chatctl stack` writes them."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, raw = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            words = shlex.split(raw)
            found[name] = words[0] if words else ""
    return found


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Written owner-only (0600) from the start: it holds the stack's secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(values.items()))
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"# settings of the running `make run` stack (chatctl stack)\n{text}")
    temporary.replace(path)


@functools.cache
def environment() -> Mapping[str, str]:
    """This process's environment over the settings a running `make run` stack wrote to
    `var/stack.env` (relative to the current folder, or `CHATCTL_ENV_FILE`): so every command
    works against the dev stack without copying secrets. An explicit variable always wins.
    Read once per process."""
    path = Path(os.environ.get("CHATCTL_ENV_FILE", "") or STACK_ENV_FILE)
    try:
        found = read_env_file(path) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}", 2)
    return found | dict(os.environ)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Prints `error: message` on stderr and exits with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings(environment())
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


def loaded(loader: Callable[[Mapping[str, str]], T]) -> T:
    """`loader(environment())`, or exit 2 naming the bad variable."""
    try:
        return loader(environment())
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


def quiet_logs(settings: Settings) -> None:
    """CLI output is for people (or --json); log lines go to the log file only."""
    configure_logging(LogSettings(file=settings.log.file, level=settings.log.level, stdout=False))


def default_actor() -> str:
    """Who an audited change is attributed to: the sudo user or the user, at this host."""
    return f"{os.environ.get('SUDO_USER') or getpass.getuser()}@{socket.gethostname()}"


class Changes:
    """What a command has changed so far, so a later failure does not claim "nothing"."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def record(self, what: str) -> None:
        self.made.append(what)

    def summary(self) -> str:
        if not self.made:
            return "Nothing was changed."
        return f"Already done: {'; '.join(self.made)} (see `chatctl flags history`)."


def _run(
    settings: Settings,
    work: Coroutine[Any, Any, T],
    changes: Changes | None,
    advice: str = "",
) -> T:
    """Runs `work`; a Redis failure becomes a clean message and exit 1. Output errors (a closed
    stdout in `chatctl ... | head -1`) are not Redis failures: they propagate to Click."""
    try:
        return asyncio.run(work)
    except (StoreUnavailable, RedisError, TimeoutError) as exc:
        failure = exc if isinstance(exc, StoreUnavailable) else translate_redis_error(exc)
        where = redacted_url(settings.redis.url)
        summary = (changes or Changes()).summary()
        more = f" Then: {advice}." if advice else ""
        raise fail(f"{failure.detail} at {where}; {failure.action}. {summary}{more}") from None


def with_redis(
    action: Callable[[Redis], Awaitable[T]],
    *,
    changes: Changes | None = None,
    settings: Settings | None = None,
    advice: str = "",
) -> T:
    """Runs `action` with one Redis client for the command; exit 2 on bad settings, 1 when Redis
    fails (saying what `changes` recorded as done before the failure, and `advice`)."""
    settings = settings or settings_or_exit()

    async def work() -> T:
        redis = open_redis(settings.redis)
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    return _run(settings, work(), changes, advice)


def with_services(
    settings: Settings,
    action: Callable[[Services], Awaitable[T]],
    *,
    changes: Changes | None = None,
) -> T:
    """Runs `action` with the engine's services (their own Redis and HTTP clients)."""

    async def work() -> T:
        async with open_services(settings) as services:
            return await action(services)

    return _run(settings, work(), changes)


def emit(data: object, as_json: bool) -> None:
    """Data as one JSON line, or as aligned `key: value` lines for people."""
    if as_json:
        typer.echo(msgspec.json.encode(data).decode())
        return
    for key, value in msgspec.to_builtins(data).items():
        typer.echo(f"{key:>26}: {shown(value)}")


def shown(value: object) -> str:
    """A value as people read it: `-` for none, `a 1, b 2` for a mapping, `a, b` for a list."""
    if value is None or value in ({}, []):
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {shown(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(shown(v) for v in value)
    return str(value)


def say(message: str, *, error: bool = False) -> None:
    """One step of an operation, for `rollback.Say`."""
    typer.echo(message, err=error)
