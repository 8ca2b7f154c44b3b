"""The checks `chatctl health` adds to the engine's own: the gateway, legacy and OpenAI, as the
runbook's health checks do them (over HTTP, from the operator's machine)."""

from __future__ import annotations

import os
import time

import httpx

from newchat.health import Check
from newchat.settings import Settings


async def _get(
    client: httpx.AsyncClient, url: str, **headers: str
) -> tuple[int | None, str, float]:
    started = time.perf_counter()
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return None, type(exc).__name__, 0.0
    return response.status_code, "", round((time.perf_counter() - started) * 1000, 1)


async def operator_checks(settings: Settings, client: httpx.AsyncClient) -> dict[str, Check]:
    checks: dict[str, Check] = {}
    gateway = os.environ.get("GATEWAY_URL") or f"http://127.0.0.1:{settings.server.port}"
    status, error, ms = await _get(client, f"{gateway.rstrip('/')}/readyz")
    if status is None or status >= 500:
        checks["gateway"] = Check(
            ok=False,
            critical=True,
            detail=f"{gateway}/readyz: {error or f'HTTP {status}'}",
            action="start the gateway (systemctl start chat-gateway, or chatctl serve); "
            "nginx serves /api/chat from legacy meanwhile",
        )
    else:
        checks["gateway"] = Check(ok=True, detail=f"ready in {ms} ms", latency_ms=ms)
    legacy = os.environ.get("LEGACY_URL")
    if legacy:
        status, error, ms = await _get(client, legacy)
        checks["legacy"] = (
            Check(ok=True, detail=f"HTTP {status} in {ms} ms", latency_ms=ms)
            if status is not None and status < 500
            else Check(
                ok=False,
                critical=True,
                detail=f"{legacy}: {error or f'HTTP {status}'}",
                action="check the legacy PHP backend (php-fpm, its nginx) and LEGACY_URL",
            )
        )
    if settings.openai.enabled:
        url = f"{settings.openai.base_url.rstrip('/')}/models"
        status, error, ms = await _get(
            client, url, Authorization=f"Bearer {settings.openai.api_key}"
        )
        checks["openai_api"] = (
            Check(ok=True, detail=f"reachable, key accepted ({ms} ms)", latency_ms=ms)
            if status == 200
            else Check(
                ok=False,
                detail=f"{url}: {error or f'HTTP {status}'}",
                action="check OPENAI_API_KEY and network; the offline classifier answers meanwhile",
            )
        )
    return checks
