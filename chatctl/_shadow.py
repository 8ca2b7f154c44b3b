"""`chatctl shadow report`: the shadow comparisons as evidence for the next rollout step."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from redis.asyncio import Redis

from chatctl._support import JsonOpt, environment, fail, shown, with_redis
from common import parse_duration
from proxy import (
    DEFAULT_THRESHOLDS,
    FieldAgreement,
    ShadowReport,
    build_report,
    load_results,
    load_rules,
)

shadow_app = typer.Typer(help="Shadow traffic: compare the backends.", no_args_is_help=True)


def thresholds(given: list[str]) -> dict[str, float]:
    """The default thresholds with the operator's, each a field the comparison rules know
    (`SHADOW_RULES`, as the gateways use) and a percentage from 0 to 100."""
    try:
        rules = load_rules(environment().get("SHADOW_RULES") or None)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    known = [rule.name for rule in rules.fields] + [rule.name for rule in rules.values]
    known.append("lead_taken")
    limits = dict(DEFAULT_THRESHOLDS)
    for item in given:
        name, _, value = (part.strip() for part in item.partition("="))
        try:
            percent = float(value.rstrip("%"))
        except ValueError:
            percent = -1.0
        if name not in known or not 0 <= percent <= 100:
            raise typer.BadParameter(
                f"{item!r}: use FIELD=PERCENT with a percentage from 0 to 100 and a field of "
                f"{', '.join(known)}, e.g. category=95"
            )
        limits[name] = percent
    return limits


@shadow_app.command("report")
def report(
    since: Annotated[str | None, typer.Option(help="Only the last DURATION (15m, 2h, 7d).")] = None,
    min_agreement: Annotated[
        list[str] | None,
        typer.Option(
            help="FIELD=PERCENT a field must reach (repeatable; default status=99, "
            "category=95, step=95, done=99, and 98 for each contact value: name_value, "
            "phone_value, email_value, zip_value, on turns and on leads, and lead_taken)."
        ),
    ] = None,
    min_similarity: Annotated[float, typer.Option(help="Median reply similarity needed.")] = 0.5,
    min_turns: Annotated[int, typer.Option(help="Fewer compared turns: not enough data.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Agreement per field with 95 % intervals, text similarity, noise, examples, a verdict.
    Exit 0 when ready for more traffic, 1 otherwise."""
    try:
        seconds = parse_duration(since) if since else None
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    limits = thresholds(min_agreement or [])

    async def run(redis: Redis) -> ShadowReport:
        results = await load_results(redis, seconds)
        return build_report(
            results,
            since_seconds=seconds,
            thresholds=limits,
            min_similarity=min_similarity,
            min_turns=min_turns,
        )

    result = with_redis(run)
    if as_json:
        typer.echo(msgspec.json.encode(result).decode())
    else:
        print_report(result)
    raise typer.Exit(0 if result.verdict == "ready for more traffic" else 1)


def _print_fields(fields: list[FieldAgreement]) -> None:
    for f in fields:
        agree = "-" if f.agreement_pct is None else f"{f.agreement_pct}%"
        ci = "-" if f.ci95_pct is None else f"{f.ci95_pct[0]}-{f.ci95_pct[1]}%"
        verdict = "not compared" if f.passes is None else "ok" if f.passes else "FAIL"
        limit = "" if f.threshold_pct is None else f"{f.threshold_pct}% {verdict}"
        typer.echo(
            f"{f.field:<11} {agree:>7} {ci:>14} {f.matches:>6} {f.mismatches:>5} "
            f"{f.noise:>6}  {limit}"
        )


def print_report(result: ShadowReport, window: str | None = None) -> None:
    """The report for people (`shadow report`, `replay`)."""
    if window is None:
        window = f"last {result.since_seconds:g}s" if result.since_seconds else "all stored"
    directions = ", ".join(f"{k}: {v}" for k, v in result.directions.items()) or "none"
    typer.echo(
        f"shadow comparisons ({window}): {result.conversations} conversations, "
        f"{result.turns} turns ({directions}); candidate errors: {result.candidate_errors}"
    )
    typer.echo(
        f"{'field':<11} {'agree':>7} {'95% CI':>14} {'match':>6} {'diff':>5} {'noise':>6}  "
        "threshold"
    )
    _print_fields(result.fields)
    if result.lead_fields:
        typer.echo(f"leads compared (legacy's lead vs the new engine's): {result.leads}")
        _print_fields(result.lead_fields)
    if result.skipped:
        reasons = ", ".join(f"{reason} {count}" for reason, count in result.skipped.items())
        typer.echo(f"turns not mirrored: {reasons} (those conversations were compared no "
                   "further: a missed turn would skew them)")  # fmt: skip
    s = {name: shown(value) for name, value in result.similarity.items()}
    typer.echo(
        f"reply similarity: p10 {s['p10']}  p50 {s['p50']}  p90 {s['p90']}  mean {s['mean']}"
    )
    noise = ", ".join(f"{k} {v}%" for k, v in result.noise_baseline_pct.items()) or "none seen"
    typer.echo(f"noise baseline (new engine vs itself, {result.noise_turns} turns): {noise}")
    for example in result.examples[:5]:
        typer.echo(
            f"  e.g. conversation {example.conversation} turn {example.turn}: "
            f"{example.field} {example.primary!r} vs {example.candidate!r}"
        )
    for worst in result.worst[:5]:
        typer.echo(
            f"  worst: conversation {worst.conversation}: {worst.mismatches} disagreements "
            f"({', '.join(worst.fields)})"
        )
    typer.echo(f"verdict: {result.verdict.upper()}")
    for reason in result.reasons:
        typer.echo(f"  - {reason}")
