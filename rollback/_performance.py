"""The performance report (`chatctl report performance`): latency, error rates and the lead
submission rate from the JSON log, judged against the runbook's targets (API p95 < 2 s,
5xx < 1 %, 4xx < 5 %, leads > 95 %)."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import msgspec

from common import percentile

TARGETS = {"p95_ms": 2000.0, "error_5xx_pct": 1.0, "error_4xx_pct": 5.0, "lead_success_pct": 95.0}


class _Line(msgspec.Struct):
    event: str = ""
    timestamp: str = ""
    route: str = ""
    status: int = 0
    latency_ms: float = 0.0
    latency_s: float = 0.0
    """nginx's `$request_time` (split mode's own log lines)."""
    backend: str = ""
    lead_id: str = ""
    outcome: str = ""


class Target(msgspec.Struct):
    name: str
    value: float | None
    limit: float
    met: bool | None


class PerformanceReport(msgspec.Struct):
    requests: int
    per_backend: dict[str, int]
    latency_ms: dict[str, float | None]
    status_classes: dict[str, int]
    leads_final: dict[str, int]
    leads_pending_retry: int
    targets: list[Target]
    verdict: str
    unreadable_lines: int


def _rounded_percentile(values: list[float], q: float) -> float | None:
    found = percentile(values, q)
    return None if found is None else round(found, 2)


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def build(lines: Iterable[bytes], since_seconds: float | None = None) -> PerformanceReport:
    decoder = msgspec.json.Decoder(_Line)
    cutoff = None if since_seconds is None else time.time() - since_seconds
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    backends: Counter[str] = Counter()
    last_outcome: dict[str, str] = {}
    unreadable = 0
    for raw in lines:
        if not raw.strip():
            continue
        try:
            line = decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            unreadable += 1
            continue
        if cutoff is not None and (_epoch(line.timestamp) or 0) < cutoff:
            continue
        if line.event == "Performance: request served" and line.route == "/api/chat":
            latencies.append(line.latency_ms or line.latency_s * 1000)
            statuses[f"{line.status // 100}xx"] += 1
            backends[line.backend or "engine"] += 1
        elif line.event == "Lead submission" and line.lead_id:
            last_outcome[line.lead_id] = line.outcome
    finals = Counter(last_outcome.values())
    succeeded = finals["accepted"] + finals["duplicated"]
    ended = succeeded + finals["permanent"]
    total = len(latencies)
    measured = {
        "p95_ms": _rounded_percentile(latencies, 0.95),
        "error_5xx_pct": round(100 * statuses["5xx"] / total, 2) if total else None,
        "error_4xx_pct": round(100 * statuses["4xx"] / total, 2) if total else None,
        "lead_success_pct": round(100 * succeeded / ended, 2) if ended else None,
    }
    targets = []
    for name, limit in TARGETS.items():
        value = measured[name]
        higher_is_better = name == "lead_success_pct"
        met = None if value is None else (value > limit if higher_is_better else value < limit)
        targets.append(Target(name, value, limit, met))
    verdict = (
        "no data" if all(t.met is None for t in targets)
        else "targets met" if all(t.met is not False for t in targets)
        else "targets missed"
    )  # fmt: skip
    return PerformanceReport(
        requests=total,
        per_backend=dict(backends),
        latency_ms={
            "p50": _rounded_percentile(latencies, 0.5),
            "p95": measured["p95_ms"],
            "p99": _rounded_percentile(latencies, 0.99),
        },
        status_classes=dict(statuses),
        leads_final={k: v for k, v in finals.items() if k != "retry"},
        leads_pending_retry=finals["retry"],
        targets=targets,
        verdict=verdict,
        unreadable_lines=unreadable,
    )


def from_files(paths: Iterable[Path], since_seconds: float | None = None) -> PerformanceReport:
    """One report over several logs (the application's, and nginx's split-mode chat log)."""
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(path.open("rb")) for path in paths]
        return build(itertools.chain.from_iterable(logs), since_seconds)
