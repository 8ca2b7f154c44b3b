"""`chatctl health`: the runbook's health checks in one command.

The engine's own checks (Redis, OpenAI, LeadProsper, worker heartbeat, stuck leads, backlog)
plus what an operator checks from outside, over HTTP: the gateway's `/readyz`, legacy, and the
OpenAI key against OpenAI's API.

Exit status: 0 when every configured check passes (a feature that is not configured here, such
as LeadProsper on a dev stack, is shown as such and is not a failure); 1 when a check fails
(status `degraded` or `down`); 2 on bad settings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

import httpx
import msgspec
import typer

from chatctl._support import JsonOpt, loaded, quiet_logs, settings_or_exit, with_services
from common import Check, StoreUnavailable, env_http_url, overall
from flags import InstanceReport, live_instances
from newchat import HealthReport, Services, Settings, health_report


class OperatorTargets(msgspec.Struct, frozen=True):
    gateway_url: str
    """`GATEWAY_URL`, default `http://127.0.0.1:$PORT`: where `/readyz` is asked."""
    legacy_url: str = ""
    """`LEGACY_URL`: checked when set."""


def load_operator_targets(environ: Mapping[str, str], settings: Settings) -> OperatorTargets:
    return OperatorTargets(
        gateway_url=env_http_url(environ, "GATEWAY_URL")
        or f"http://127.0.0.1:{settings.server.port}",
        legacy_url=env_http_url(environ, "LEGACY_URL"),
    )


class _Readiness(msgspec.Struct):
    """What the gateway's `/readyz` says about itself (the fields read here)."""

    status: str = ""
    failing: list[str] = msgspec.field(default_factory=list)
    checks: dict[str, Check] = msgspec.field(default_factory=dict)


async def _get(
    client: httpx.AsyncClient, url: str, **headers: str
) -> tuple[int | None, str, float, bytes]:
    started = time.perf_counter()
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return None, type(exc).__name__, 0.0, b""
    ms = round((time.perf_counter() - started) * 1000, 1)
    return response.status_code, "", ms, response.content


def _gateway_check(gateway: str, status: int | None, error: str, ms: float, body: bytes) -> Check:
    """The gateway is up when `/readyz` answers; it is ready only when that answer says so, and
    when it is not, the answer names what fails and what to do (legacy down, say)."""
    try:
        readiness = msgspec.json.decode(body, type=_Readiness) if body else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        readiness = None
    if status is not None and status < 500:
        degraded = readiness.failing if readiness and readiness.status == "degraded" else []
        shown = f"ready in {ms} ms" + (f" (degraded: {', '.join(degraded)})" if degraded else "")
        if readiness is not None and "flags" in degraded:
            # routing on flags Redis no longer holds: serving, but an operator must act
            flags = readiness.checks.get("flags")
            return Check(
                ok=False,
                detail=f"{gateway}: {flags.detail if flags else 'flags regressed'}",
                action=flags.action if flags else "see the gateway's /readyz",
                latency_ms=ms,
            )
        if readiness is not None and "unleash" in degraded:
            # serving on the last good toggles, but they no longer follow Unleash
            unleash = readiness.checks.get("unleash")
            return Check(
                ok=False,
                detail=f"{gateway}: serving, but Unleash is unreachable: "
                f"{unleash.detail if unleash else 'see /readyz'}",
                action=unleash.action if unleash else "check the Unleash server",
                latency_ms=ms,
            )
        return Check(ok=True, detail=shown, latency_ms=ms)
    if readiness is not None and readiness.failing:
        actions = [readiness.checks[n].action for n in readiness.failing if n in readiness.checks]
        return Check(
            ok=False,
            critical=True,
            detail=f"{gateway} is up but not ready: {', '.join(readiness.failing)} failing",
            action="; ".join(a for a in actions if a) or "see the gateway's /readyz",
        )
    return Check(
        ok=False,
        critical=True,
        detail=f"{gateway}/readyz: {error or f'HTTP {status}'}",
        action="start the gateway (systemctl start chat-gateway, or chatctl serve); "
        "nginx serves /api/chat from legacy meanwhile",
    )


async def operator_checks(
    settings: Settings, targets: OperatorTargets, client: httpx.AsyncClient
) -> dict[str, Check]:
    checks: dict[str, Check] = {}
    gateway = targets.gateway_url.rstrip("/")
    checks["gateway"] = _gateway_check(gateway, *await _get(client, f"{gateway}/readyz"))
    if targets.legacy_url:
        status, error, ms, _ = await _get(client, targets.legacy_url)
        checks["legacy"] = (
            Check(ok=True, detail=f"HTTP {status} in {ms} ms", latency_ms=ms)
            if status is not None and status < 500
            else Check(
                ok=False,
                critical=True,
                detail=f"{targets.legacy_url}: {error or f'HTTP {status}'}",
                action="check the legacy PHP backend (php-fpm, its nginx) and LEGACY_URL",
            )
        )
    if settings.openai.enabled:
        url = f"{settings.openai.base_url.rstrip('/')}/models"
        status, error, ms, _ = await _get(
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


def routing_check(instances: list[InstanceReport]) -> Check | None:
    """What every live gateway routes on (their instance reports): its shares and their source,
    and a failure when one's Unleash is unreachable (`GATEWAY_URL` names one gateway only)."""
    reporting = [report for report in instances if report.routing is not None]
    if not reporting:
        return None
    lines, cut_off = [], []
    for report in reporting:
        routing = report.routing
        assert routing is not None  # noqa: S101 - filtered above
        line = (f"{report.instance}: new engine {routing.new_chat_percent} %"
                f"{'' if routing.new_chat_enabled else ' (switched off)'}, shadow "
                f"{routing.shadow_percent} % from {routing.source}")  # fmt: skip
        if routing.decided_by == "unleash":
            line += f" (environment {routing.unleash_environment or '?'}: {routing.detail})"
            if not routing.unleash_reachable:
                cut_off.append(report.instance)
        lines.append(line)
    if cut_off:
        return Check(
            ok=False,
            detail=f"Unleash unreachable from {', '.join(cut_off)}; " + "; ".join(lines),
            action="check the Unleash server and UNLEASH_API_TOKEN; those gateways route on "
            "their last good toggles",
        )
    return Check(ok=True, detail="; ".join(lines))


def health(as_json: JsonOpt = False) -> None:
    """The runbook's health checks in one command (gateway, Redis, legacy, OpenAI, LeadProsper,
    queue, worker heartbeat). Exit 0 when every configured check passes, 1 when one fails."""
    settings = settings_or_exit()
    targets = loaded(lambda environ: load_operator_targets(environ, settings))
    quiet_logs(settings)

    async def run(services: Services) -> HealthReport:
        report = await health_report(services)
        async with httpx.AsyncClient(timeout=3.0) as client:
            report.checks.update(await operator_checks(settings, targets, client))
        with contextlib.suppress(StoreUnavailable):  # the redis check says so already
            routing = routing_check(await live_instances(services.redis))
            if routing is not None:
                report.checks["routing"] = routing
        report.status, report.failing = overall(report.checks)
        return report

    report = with_services(settings, run)
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        typer.echo(f"status: {report.status}")
        for name, check in report.checks.items():
            mark = "ok  " if check.ok and check.configured else " -- " if check.ok else "FAIL"
            typer.echo(f"  [{mark}] {name}: {check.detail}")
            if check.action and (not check.ok or not check.configured):
                typer.echo(f"         -> {check.action}")
        for state, count in report.queue.items():
            typer.echo(f"  queue {state}: {count}")
    raise typer.Exit(0 if report.status == "ok" else 1)
