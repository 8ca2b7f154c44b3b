"""The rollout from Unleash (when `UNLEASH_URL` is set), through the official UnleashClient SDK.

What Unleash decides: which new conversations start on the new engine (toggle `new-chat`, with a
flexibleRollout strategy on `sessionId`) and which are shadowed (toggle `new-chat-shadow`). The
run-time master switch, drain mode and pins stay in Redis: the operators' brake must work even when
Unleash is down.

Guarantees: checks are in memory and never raise; the SDK is bootstrapped from the current
env/Redis flags, so a gateway that starts while Unleash is unreachable routes as before rather than
with everything off; the SDK keeps the last good state during an outage. The SDK swallows fetch
errors, so reachability is probed separately and shown in `/readyz` and `chatctl health`.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from typing import Any

import aiohttp
import msgspec

from common import BackgroundTask, Stopping, get_logger
from flags._model import FlagValues

_log = get_logger("flags.unleash")


class UnleashSettings(msgspec.Struct, frozen=True):
    url: str
    """Base URL of the Unleash API, e.g. https://unleash.example.com/api."""
    api_token: str = ""
    app_name: str = "chat-gateway"
    rollout_toggle: str = "new-chat"
    shadow_toggle: str = "new-chat-shadow"
    refresh_interval_seconds: int = 15
    request_timeout_seconds: int = 5
    cache_directory: str = ""
    """Where the SDK keeps its file cache; a private temp folder when empty."""


class UnleashStatus(msgspec.Struct, frozen=True):
    reachable: bool
    last_ok_at: float | None
    last_error: str | None
    toggles_known: tuple[str, ...]


def bootstrap_features(
    settings: UnleashSettings, group_id: str, values: FlagValues
) -> dict[str, Any]:
    """The `/api/client/features` document equivalent to the env/Redis flags."""

    def toggle(name: str, enabled: bool, percent: int, group: str) -> dict[str, Any]:
        parameters = {"rollout": str(percent), "stickiness": "sessionId", "groupId": group}
        return {
            "name": name,
            "enabled": enabled,
            "strategies": [{"name": "flexibleRollout", "parameters": parameters}],
        }

    return {
        "version": 1,
        "features": [
            toggle(
                settings.rollout_toggle,
                values.enable_new_chat,
                values.new_chat_percent,
                group_id,
            ),
            toggle(settings.shadow_toggle, True, values.shadow_percent, settings.shadow_toggle),
        ],
    }


class UnleashRollout:
    """Owns one UnleashClient (background polling thread) and a reachability probe."""

    def __init__(
        self, settings: UnleashSettings, *, group_id: str, bootstrap: FlagValues, instance_id: str
    ) -> None:
        from UnleashClient.cache import FileCache  # noqa: PLC0415
        from UnleashClient.clients.unleash_client import UnleashClient  # noqa: PLC0415 - only loaded when configured
        from UnleashClient.utils import InstanceAllowType  # noqa: PLC0415

        # The SDK logs every failed poll with a traceback; the probe reports outages instead.
        logging.getLogger("UnleashClient").setLevel(logging.CRITICAL)
        self._settings = settings
        self._cache_dir = settings.cache_directory or tempfile.mkdtemp(prefix="unleash-cache-")
        cache = FileCache(settings.app_name, directory=self._cache_dir)
        cache.bootstrap_from_dict(bootstrap_features(settings, group_id, bootstrap))
        headers = {"Authorization": settings.api_token} if settings.api_token else {}
        self._client = UnleashClient(
            url=settings.url,
            app_name=settings.app_name,
            instance_id=instance_id,
            refresh_interval=settings.refresh_interval_seconds,
            request_timeout=settings.request_timeout_seconds,
            request_retries=0,
            custom_headers=headers,
            cache=cache,
            disable_metrics=True,
            multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
        )
        self._headers = headers
        self._reachable = False
        self._last_ok_at: float | None = None
        self._last_error: str | None = "not checked yet"
        self._prober = BackgroundTask("unleash-probe", self._probe_forever)

    async def start(self) -> None:
        """Registers and fetches once (in a thread: the SDK is blocking), then polls in background."""
        try:
            await asyncio.to_thread(self._client.initialize_client)
        except Exception as exc:  # any SDK failure leaves the bootstrap in force
            _log.error(
                "Unleash client failed to start; routing on the bootstrapped flags",
                error=type(exc).__name__,
                action="check UNLEASH_URL and UNLEASH_API_TOKEN",
            )
        await self.probe()
        self._prober.start()

    async def stop(self) -> None:
        await self._prober.stop()
        await asyncio.to_thread(self._client.destroy)

    def in_rollout(self, bucket_id: str) -> bool:
        return self._check(self._settings.rollout_toggle, bucket_id)

    def in_shadow(self, bucket_id: str) -> bool:
        return self._check(self._settings.shadow_toggle, bucket_id)

    def _check(self, toggle: str, bucket_id: str) -> bool:
        try:
            return bool(self._client.is_enabled(toggle, {"sessionId": bucket_id}))
        except Exception:  # a flag check never raises into a request
            return False

    def status(self) -> UnleashStatus:
        try:
            known = tuple(sorted(self._client.feature_definitions()))
        except Exception:
            known = ()
        return UnleashStatus(self._reachable, self._last_ok_at, self._last_error, known)

    async def probe(self) -> bool:
        """One GET of the client features endpoint: is Unleash answering, with our token?"""
        url = f"{self._settings.url.rstrip('/')}/client/features"
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout_seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=self._headers) as response,
            ):
                ok = response.status == 200
                error = None if ok else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:200]
        if ok:
            self._last_ok_at = time.time()
        elif self._reachable or self._last_error == "not checked yet":
            _log.error(
                "Unleash unreachable; keeping the last good flags",
                error=error,
                action="check the Unleash server and UNLEASH_API_TOKEN; routing continues",
            )
        self._reachable, self._last_error = ok, error
        return ok

    async def _probe_forever(self, stopping: Stopping) -> None:
        while not await stopping.sleep(self._settings.refresh_interval_seconds):
            await self.probe()
