"""What every `chatctl` command that talks to Redis shares: settings or a usage error, one Redis
connection for the command, a clean message (not a traceback) when Redis is down, the actor."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from newchat.health import redacted_url
from newchat.settings import SettingsError, load_settings

T = TypeVar("T")


def default_actor() -> str:
    """Who an audited change is attributed to: the sudo user or the user, at this host."""
    return f"{os.environ.get('SUDO_USER') or getpass.getuser()}@{socket.gethostname()}"


def with_redis(action: Callable[[Redis], Awaitable[T]], *, timeout: float = 5.0) -> T:
    """Runs `action` with a Redis client; exit 2 on bad settings, 1 when Redis is unreachable."""
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def run() -> T:
        redis = Redis.from_url(settings.redis.url, socket_timeout=timeout, socket_connect_timeout=3)
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except (RedisError, OSError) as exc:
        typer.echo(
            f"error: Redis unreachable at {redacted_url(settings.redis.url)} "
            f"({type(exc).__name__}); start redis-server or fix REDIS_URL. Nothing was changed.",
            err=True,
        )
        raise typer.Exit(1) from None
