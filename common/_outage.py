"""One ERROR when a dependency fails, one INFO when it is back: a background loop that retries
every half second must not write an error line per attempt (an outage of a minute would be 120
identical lines hiding everything else), nor stay silent about the recovery."""

from __future__ import annotations

import time

from common._errors import StoreUnavailable
from common._logs import get_logger
from common._redis import REDIS_FAILURES, translate_redis_error


class OutageLog:
    """Tracks one dependency's outages for one loop and logs each once.

    `failed(exc)` returns the delay to wait before the next attempt: `first_delay` seconds,
    doubling per consecutive failure up to `max_delay` (so a loop recovers within `max_delay`
    of the dependency's return). `recovered()` ends the outage.
    """

    def __init__(
        self, logger_name: str, what: str, *, first_delay: float = 0.25, max_delay: float = 1.0
    ) -> None:
        self._log = get_logger(logger_name)
        self._what = what
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._since: float | None = None
        self._delay = first_delay
        self.outages = 0
        """Outages seen since start (each logged once)."""

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, **context: object) -> float:
        failure = (
            exc
            if isinstance(exc, StoreUnavailable)
            else translate_redis_error(exc)
            if isinstance(exc, REDIS_FAILURES)
            else None
        )
        if self._since is None:
            self._since = time.monotonic()
            self._delay = self._first_delay
            self.outages += 1
            self._log.error(
                f"{self._what} paused: Redis failed",
                error=failure.kind if failure else type(exc).__name__,
                detail=failure.detail if failure else str(exc)[:200],
                action=(failure.action if failure else "check the Redis logs")
                + "; retrying by itself, nothing is lost meanwhile",
                **context,
            )
        delay = self._delay
        self._delay = min(self._delay * 2, self._max_delay)
        return delay

    def recovered(self, **context: object) -> None:
        if self._since is None:
            return
        seconds = round(time.monotonic() - self._since, 2)
        self._since = None
        self._log.info(f"{self._what} resumed: Redis is back", outage_seconds=seconds, **context)


class OutageState:
    """Whether a dependency is down, for code that logs every failure itself (a request path):
    the first failure of an outage is the ERROR, the rest are warnings until a success ends it,
    so a 3 s Redis outage is one ERROR line, not one per visitor turn (33 were counted)."""

    def __init__(self) -> None:
        self._down = False

    def begin(self) -> bool:
        """Marks a failure; True when it starts an outage."""
        first = not self._down
        self._down = True
        return first

    def end(self) -> None:
        self._down = False
