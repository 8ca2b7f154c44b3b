"""The rollout from Unleash (when `UNLEASH_URL` is set), through the official UnleashClient SDK.

What Unleash decides: which new conversations start on the new engine (toggle `new-chat`, with a
flexibleRollout strategy on `sessionId`) and which are shadowed (toggle `new-chat-shadow`). The
run-time master switch, drain mode and pins stay in Redis: the operators' brake must work even when
Unleash is down.

Guarantees:
- Serving never waits for Unleash: the SDK starts in a background thread; until its first fetch
  the gateway routes on the last state it has (below), and a hanging server delays nothing.
- The last good state survives a restart during an outage: the SDK's file cache
  (`UNLEASH_CACHE_DIR`, default `var/unleash-cache`) keeps the last state fetched, and a start
  loads it; only a gateway that never fetched starts from the env/Redis flags (`bootstrap`).
  `/readyz` says which (`source`: `unleash`, `unleash-cache` or `bootstrap`).
- One poll: the SDK's own, every `UNLEASH_REFRESH_INTERVAL` seconds (default 1) with
  `If-None-Match`, so an unchanged state costs a 304. Reachability is read off that poll (the
  cache hears every successful answer), not from a second request.
- Checks are in memory and never raise. Usage metrics go to Unleash (toggle names and yes/no
  counts; the context, which holds the session id, is never sent).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from common import BackgroundTask, Stopping, get_logger
from flags._model import FlagValues

_log = get_logger("flags.unleash")
_FEATURES = "/client/features"  # UnleashClient.constants.FEATURES_URL: the cache's key
_ETAG = "etag"  # UnleashClient.constants.ETAG
_FETCHED_AT = "chat-gateway:fetched_at"
"""Our own key in the SDK's cache: when the cached state last came from the server."""

Source = Literal["unleash", "unleash-cache", "bootstrap"]


class UnleashSettings(msgspec.Struct, frozen=True):
    url: str
    """Base URL of the Unleash API, e.g. https://unleash.example.com/api."""
    api_token: str = ""
    app_name: str = "chat-gateway"
    rollout_toggle: str = "new-chat"
    shadow_toggle: str = "new-chat-shadow"
    refresh_interval_seconds: int = 1
    """Seconds between polls: a change reaches routing within about this plus one second."""
    request_timeout_seconds: int = 5
    metrics_interval_seconds: int = 60
    """Seconds between usage reports to Unleash (`UNLEASH_METRICS_INTERVAL`)."""
    cache_directory: str = "var/unleash-cache"
    """The SDK's file cache: the last state fetched, loaded at start. Empty: a private temp
    folder, removed at stop (then a restart during an outage starts from the bootstrap)."""

    @property
    def token_environment(self) -> str | None:
        """The environment a client token reads (`<project>:<environment>.<secret>`), or None."""
        head, _, _ = self.api_token.partition(".")
        _, colon, environment = head.partition(":")
        return environment if colon and environment and environment != "*" else None


class ToggleState(msgspec.Struct, frozen=True):
    """One toggle as the gateway's Unleash state has it."""

    name: str
    known: bool
    enabled: bool = False
    percent: int = 0
    """The share it lets through: flexibleRollout's `rollout`, 100 for `default`, 0 when off."""
    strategy: str = ""
    """E.g. `flexibleRollout rollout=30 stickiness=sessionId groupId=new-chat`."""


class UnleashStatus(msgspec.Struct, frozen=True):
    reachable: bool
    last_ok_at: float | None
    last_error: str | None
    toggles_known: tuple[str, ...]
    source: Source
    """What the gateway routes on: fetched from the server since it started, the cache of an
    earlier run (Unleash was not reached yet), or the env/Redis bootstrap (never fetched)."""
    fetched_at: float | None
    """When the state in force last came from the server (None: the bootstrap)."""
    environment: str | None
    rollout: ToggleState
    shadow: ToggleState


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


def toggle_state(document: Any, name: str, share: float | None = None) -> ToggleState:
    """A toggle read from a client features document: every strategy with its parameters and
    constraints. `percent` is what one plain strategy says (flexibleRollout's `rollout`, 100
    for `default`); with constraints or several strategies, `share` (measured by evaluating the
    state, `ShareGauge`) when given, since the parameters alone no longer say it."""
    features = document.get("features", []) if isinstance(document, dict) else []
    feature = next((f for f in features if isinstance(f, dict) and f.get("name") == name), None)
    if feature is None:
        return ToggleState(name, known=False)
    enabled = bool(feature.get("enabled"))
    strategies = [s for s in feature.get("strategies") or [] if isinstance(s, dict)]
    percent, described = 0, []
    for strategy in strategies:
        parameters = strategy.get("parameters") or {}
        if strategy.get("name") == "flexibleRollout":
            with contextlib.suppress(TypeError, ValueError):
                percent = max(percent, int(parameters.get("rollout", 0)))
        elif strategy.get("name") == "default":
            percent = 100
        shown = " ".join(f"{k}={v}" for k, v in sorted(parameters.items()))
        constraints = [
            f"{c.get('contextName')} {c.get('operator')} {','.join(map(str, c.get('values') or []))}"
            for c in strategy.get("constraints") or []
            if isinstance(c, dict)
        ]
        where = f" [if {' and '.join(constraints)}]" if constraints else ""
        described.append(f"{strategy.get('name')} {shown}".strip() + where)
    plain = len(strategies) == 1 and not strategies[0].get("constraints")
    if share is not None and not plain:  # one plain strategy says exactly what it lets through
        percent = round(share * 100)
    return ToggleState(name, True, enabled, percent if enabled else 0, "; ".join(described))


def valid_state(raw: Any) -> str | None:
    """Why a fetched feature set must not replace the last good one (None: it may). A proxy
    answering 200 with HTML, or a rollout of "banana", once became the state a restart loaded:
    0 % where Unleash said 30 % (a fresh helper, issue 20)."""
    try:
        document = json.loads(raw)
    except (TypeError, ValueError):
        return "not JSON"
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list):
        return "no feature list"
    for feature in features:
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            return "a feature without a name"
        for strategy in feature.get("strategies") or []:
            parameters = strategy.get("parameters") if isinstance(strategy, dict) else None
            if not isinstance(strategy, dict) or not isinstance(parameters or {}, dict):
                return f"a malformed strategy in {feature['name']}"
            if strategy.get("name") == "flexibleRollout":
                rollout = str((parameters or {}).get("rollout", ""))
                if not rollout.isdigit() or int(rollout) > 100:
                    return f"flexibleRollout rollout={rollout!r} in {feature['name']}"
    return None


SAMPLE_IDS = tuple(f"share-sample-{n}" for n in range(2_000))
"""Session ids a state is evaluated on to measure the share it lets through (+-2 points)."""


class ShareGauge:
    """The share of new conversations a feature set lets through each toggle, measured by
    evaluating it with Unleash's own engine (yggdrasil, as the SDK does) on `SAMPLE_IDS` in the
    gateway's context: constraints and several strategies count as they route. Its own engine,
    so the SDK's usage metrics sent to Unleash do not count these evaluations."""

    def __init__(self, app_name: str) -> None:
        self._app_name = app_name
        self._raw: str | None = None
        self._shares: dict[str, float] = {}

    def share(self, raw: str, toggle: str) -> float | None:
        if raw != self._raw:
            self._raw, self._shares = raw, {}
        if toggle not in self._shares:
            try:
                from yggdrasil_engine.engine import UnleashEngine  # type: ignore[import-untyped]  # noqa: PLC0415

                engine = UnleashEngine()
                engine.take_state(raw)
                hits = 0
                for sid in SAMPLE_IDS:
                    result = engine.is_enabled(
                        toggle, {"sessionId": sid, "appName": self._app_name}
                    )
                    hits += bool(getattr(result, "is_enabled", result))  # a FeatureToggle
            except Exception:
                return None
            self._shares[toggle] = hits / len(SAMPLE_IDS)
        return self._shares[toggle]


class _SdkLog(logging.Handler):
    """The SDK's word on a failed fetch (its status or exception), kept for `/readyz` instead
    of its tracebacks in our log, and when it came (the SDK returns nothing on a failure)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None
        self.failed_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            message = record.getMessage()
            if "fetch failed" not in message.lower():
                return
            detail = message.split(" due to ", 1)[-1][:200]
            status = detail.rsplit(": ", 1)[-1] if "status code" in detail else ""
            if status.isdigit():
                detail = f"HTTP {status} from Unleash" + (
                    " (check UNLEASH_API_TOKEN)" if status in ("401", "403") else ""
                )
            elif self.failed_at is not None and record.created - self.failed_at < 1:
                return  # the SDK's generic line right after the one that said why
            self.last = detail
            self.failed_at = record.created


class UnleashRollout:
    """Owns one UnleashClient (its polling thread) and what operators are told about it."""

    def __init__(
        self, settings: UnleashSettings, *, group_id: str, bootstrap: FlagValues, instance_id: str
    ) -> None:
        from UnleashClient.cache import FileCache  # noqa: PLC0415 - only loaded when configured
        from UnleashClient.clients.unleash_client import UnleashClient  # noqa: PLC0415
        from UnleashClient.utils import InstanceAllowType  # noqa: PLC0415

        rollout = self

        class TrackingCache(FileCache):
            """The SDK's file cache, hearing every successful poll (a 200 stores the state, a
            304 the ETag) and keeping when that was."""

            def set(self, key: str, value: Any) -> None:
                if key == _FEATURES and not rollout._bootstrapping and valid_state(value):
                    return  # never the last good state (the transport wrapper says why)
                super().set(key, value)
                if key == _FEATURES and value and not rollout._bootstrapping:
                    super().set(_FETCHED_AT, time.time())

        sdk_logger = logging.getLogger("UnleashClient")
        sdk_logger.propagate = False  # its tracebacks are not our log's; `_SdkLog` keeps the gist
        self._sdk_log = _SdkLog()
        sdk_logger.addHandler(self._sdk_log)
        # the SDK's scheduler says "missed run" once a second while a fetch hangs
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        self._settings = settings
        self._group_id = group_id
        self._gauge = ShareGauge(settings.app_name)
        self._cache_dir = _private_folder(settings.cache_directory)
        self._owned_cache_dir = self._cache_dir != settings.cache_directory
        self._bootstrapping = True
        self._last_ok_at: float | None = None
        self._fetched_now = False
        cache = TrackingCache(settings.app_name, directory=self._cache_dir)
        self._cache = cache
        if cache.get(_FEATURES):
            self._source: Source = "unleash-cache"
            self._fetched_at: float | None = cache.get(_FETCHED_AT)
            cache.bootstrapped = True  # the SDK loads it at once, before any fetch
        else:
            self._source, self._fetched_at = "bootstrap", None
            cache.bootstrap_from_dict(bootstrap_features(settings, group_id, bootstrap))
        self._bootstrapping = False
        headers = {"Authorization": settings.api_token} if settings.api_token else {}
        self._client = UnleashClient(
            url=settings.url,
            app_name=settings.app_name,
            instance_id=instance_id,
            refresh_interval=settings.refresh_interval_seconds,
            request_timeout=settings.request_timeout_seconds,
            request_retries=0,
            metrics_interval=settings.metrics_interval_seconds,
            custom_headers=headers,
            cache=cache,
            disable_metrics=False,
            multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
        )
        self._watch_polls()
        self._started_at = time.time()
        self._reachable_logged: bool | None = None
        self._starter: threading.Thread | None = None
        self._watch = BackgroundTask("unleash-watch", self._watch_forever)

    def _watch_polls(self) -> None:
        """Hears the outcome of every poll. Unleash 8 answers an unchanged state with a 304 that
        carries no ETag, so nothing reaches the cache then: the SDK's transport (pinned in
        uv.lock; `_transport.fetch_features` returns a `FetchResult`) is wrapped instead. If a
        later SDK moves it, the cache and the SDK's log still tell 200s and failures apart."""
        transport = getattr(self._client, "_transport", None)
        fetch = getattr(transport, "fetch_features", None)
        if fetch is None:
            return

        def fetch_features(etag: str = "") -> Any:
            result = fetch(etag)
            unusable = valid_state(result.raw_state) if result.raw_state else None
            if unusable is not None:
                # a 200 that is not a feature set: a failed poll, and its ETag not kept (the
                # next poll must fetch again, not be told "not modified" about the garbage)
                self._sdk_log.last = f"Unleash answered an unusable feature set ({unusable})"
                self._sdk_log.failed_at = time.time()
                return result._replace(raw_state=None, etag="")
            if result.raw_state or getattr(result, "not_modified", False):
                self._heard_from_server(bool(result.raw_state))
            return result

        transport.fetch_features = fetch_features  # type: ignore[union-attr]

    def _heard_from_server(self, new_state: bool) -> None:
        self._last_ok_at = time.time()
        self._source = "unleash"
        if new_state or self._fetched_at is None:
            self._fetched_at = self._last_ok_at
        self._fetched_now = True

    async def start(self) -> None:
        """Starts the SDK (registration, first fetch, polling) in a background thread and
        returns at once: the gateway serves on the cached or bootstrapped state meanwhile."""
        self._starter = threading.Thread(target=self._initialize, name="unleash-start", daemon=True)
        self._starter.start()
        self._watch.start()

    def _initialize(self) -> None:
        try:
            self._client.initialize_client()
        except Exception as exc:  # any SDK failure leaves the cached/bootstrapped state in force
            _log.error(
                "Unleash client failed to start; routing on the last state it has",
                error=type(exc).__name__,
                action="check UNLEASH_URL and UNLEASH_API_TOKEN",
            )

    async def stop(self) -> None:
        await self._watch.stop()
        # destroy() waits for a start still talking to a hanging server: not on our time
        threading.Thread(target=self._destroy, name="unleash-stop", daemon=True).start()
        if self._owned_cache_dir:  # now: the daemon thread may not outlive the process
            shutil.rmtree(self._cache_dir, ignore_errors=True)

    def _destroy(self) -> None:
        with contextlib.suppress(Exception):
            self._client.destroy()
        if self._owned_cache_dir:  # again: a poll in flight at stop wrote it back
            shutil.rmtree(self._cache_dir, ignore_errors=True)

    def in_rollout(self, bucket_id: str) -> bool:
        return self._check(self._settings.rollout_toggle, bucket_id)

    def in_shadow(self, bucket_id: str) -> bool:
        return self._check(self._settings.shadow_toggle, bucket_id)

    def _check(self, toggle: str, bucket_id: str) -> bool:
        try:
            return bool(self._client.is_enabled(toggle, {"sessionId": bucket_id}))
        except Exception:  # a flag check never raises into a request
            return False

    @property
    def _grace_seconds(self) -> float:
        """How long without a successful poll before Unleash counts as unreachable: two
        polls and a request timeout."""
        settings = self._settings
        return 2 * settings.refresh_interval_seconds + settings.request_timeout_seconds

    def status(self) -> UnleashStatus:
        now = time.time()
        failed_at = self._sdk_log.failed_at
        reachable = (
            self._last_ok_at is not None
            and now - self._last_ok_at <= self._grace_seconds
            and (failed_at is None or failed_at < self._last_ok_at)  # the latest poll answered
        )
        if reachable:
            error = None
        elif self._last_ok_at is None and failed_at is None:
            error = "not reached yet (starting)"
        else:
            since = self._last_ok_at or self._started_at
            error = f"no answer for {now - since:.0f}s" + (
                f": {self._sdk_log.last}" if self._sdk_log.last else ""
            )
        raw = self._cache.get(_FEATURES) or "{}"
        try:
            document = json.loads(raw)
        except (TypeError, ValueError):
            document = {}
        rollout_toggle, shadow_toggle = self._settings.rollout_toggle, self._settings.shadow_toggle
        try:
            known = tuple(sorted(self._client.feature_definitions()))
        except Exception:
            known = ()
        return UnleashStatus(
            reachable=reachable,
            last_ok_at=self._last_ok_at,
            last_error=error,
            toggles_known=known,
            source=self._source,
            fetched_at=self._fetched_at,
            environment=self._settings.token_environment,
            rollout=toggle_state(document, rollout_toggle, self._gauge.share(raw, rollout_toggle)),
            shadow=toggle_state(document, shadow_toggle, self._gauge.share(raw, shadow_toggle)),
        )

    async def _watch_forever(self, stopping: Stopping) -> None:
        """Logs each change of reachability once (an ERROR with the action, an INFO back)."""
        while not await stopping.sleep(self._settings.refresh_interval_seconds):
            status = self.status()
            starting = status.last_error == "not reached yet (starting)"
            if starting or status.reachable == self._reachable_logged:
                continue
            if status.reachable:
                _log.info("Unleash reachable", source=status.source)
            else:
                _log.error(
                    "Unleash unreachable; routing on the last good toggles",
                    error=status.last_error,
                    action="check the Unleash server and UNLEASH_API_TOKEN; routing continues",
                )
            self._reachable_logged = status.reachable


def _private_folder(configured: str) -> str:
    """The SDK's cache folder, private to this user: its files are pickles, loaded at start, so
    a folder others can write to would let them run code as the gateway (a fresh helper, issue
    20). Created 0700; a folder of ours that others can enter is made 0700; one owned by
    someone else is not used (a private temp folder instead, removed at stop, and an ERROR)."""
    if not configured:
        return tempfile.mkdtemp(prefix="unleash-cache-")
    folder = Path(configured)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.geteuid():
        _log.error(
            "UNLEASH_CACHE_DIR belongs to another user; not used",
            folder=str(folder),
            action="give the gateway a folder of its own (default var/unleash-cache)",
        )
        return tempfile.mkdtemp(prefix="unleash-cache-")
    if info.st_mode & 0o077:
        folder.chmod(0o700)
    return str(folder)
