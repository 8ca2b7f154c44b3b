"""The performance report's arithmetic over log lines, against the runbook's targets."""

from __future__ import annotations

import json
from pathlib import Path

from rollback import build_performance_report as build
from rollback import performance_report_from_files as from_files


def line(**fields: object) -> bytes:
    return json.dumps({"timestamp": "2026-11-27T12:00:00Z", "level": "INFO", **fields}).encode()


def served(status: int, latency_ms: float, backend: str = "legacy") -> bytes:
    return line(
        event="Performance: request served", route="/api/chat", status=status,
        latency_ms=latency_ms, backend=backend,
    )  # fmt: skip


def test_targets_are_judged_from_the_log() -> None:
    lines = [served(200, 100.0) for _ in range(97)] + [served(503, 50.0, "new")] * 3
    lines += [line(event="Lead submission", lead_id="a", outcome="retry")]
    lines += [line(event="Lead submission", lead_id="a", outcome="accepted")]
    lines += [line(event="Lead submission", lead_id="b", outcome="permanent")]
    lines += [line(event="Lead submission", lead_id="c", outcome="retry")]
    lines += [b"not json", line(event="Category detection", route="/api/chat")]
    report = build(lines)
    assert report.requests == 100
    assert report.per_backend == {"legacy": 97, "new": 3}
    assert report.status_classes == {"2xx": 97, "5xx": 3}
    assert report.leads_final == {"accepted": 1, "permanent": 1}
    assert report.leads_pending_retry == 1
    measured = {t.name: (t.value, t.met) for t in report.targets}
    assert measured["error_5xx_pct"] == (3.0, False)
    assert measured["p95_ms"] == (100.0, True)
    assert measured["lead_success_pct"] == (50.0, False)
    assert report.verdict == "targets missed"
    assert report.unreadable_lines == 1


def test_since_keeps_only_recent_lines_and_no_data_is_said() -> None:
    old = served(500, 9000.0)
    assert build([old], since_seconds=3600).verdict == "no data"
    assert build([]).requests == 0


def test_nginx_split_mode_lines_join_the_gateways(tmp_path: Path) -> None:
    app_log, nginx_log = tmp_path / "application.log", tmp_path / "chat-split.log"
    app_log.write_bytes(served(200, 30.0, "new") + b"\n" + served(200, 20.0) + b"\n")
    nginx_line = (  # as the split-mode log_format writes it
        '{"timestamp":"2026-11-27T12:00:01+00:00","event":"Performance: request served",'
        '"route":"/api/chat","method":"POST","backend":"legacy","reason":"nginx_split",'
        '"status":200,"latency_s":0.5}'
    )
    nginx_log.write_text(nginx_line + "\n")
    report = from_files([app_log, nginx_log])
    assert report.requests == 3
    assert report.per_backend == {"new": 1, "legacy": 2}
    assert report.latency_ms["p50"] == 30.0  # of 20, 30 and nginx's 0.5 s read as 500 ms
    assert report.latency_ms["p99"] == 500.0
    assert report.unreadable_lines == 0
