"""Prometheus metrics of the gateway (on the registry it shares with the in-process engine)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter(
            "gateway_requests_total",
            "Chat requests answered, by backend and status class",
            ["backend", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_request_seconds",
            "Chat request latency seen by the visitor, by backend",
            ["backend"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.decisions = Counter(
            "gateway_decisions_total",
            "Routing decisions, by backend and reason",
            ["backend", "reason"],
            registry=r,
        )
        self.failovers = Counter(
            "gateway_failovers_total",
            "New-engine failures answered by legacy, by cause",
            ["reason"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Backend failures (connect, timeout, bad_reply, too_large, failed, status_5xx)",
            ["backend", "kind"],
            registry=r,
        )
        self.rejected = Counter(
            "gateway_rejected_total",
            "Requests refused by the gateway itself",
            ["reason"],
            registry=r,
        )
        self.pin_store_errors = Counter(
            "gateway_pin_store_errors_total",
            "Redis failures reading or writing routing pins",
            ["operation"],
            registry=r,
        )
        self.shadow_skipped = Counter(
            "gateway_shadow_skipped_total",
            "Turns of shadowed conversations not mirrored (busy, cpu, legacy_not_marked_safe)",
            ["reason"],
            registry=r,
        )
        self.stale_requests = Counter(
            "gateway_stale_requests_total",
            "Requests not forwarded: nginx had stamped them longer ago than GATEWAY_STALE_AFTER "
            "(their visitor already had nginx's answer, counted there)",
            registry=r,
        )
        self.recordings_dropped = Counter(
            "gateway_recordings_dropped_total",
            "Legacy turns of recorded conversations not recorded (busy, not_a_turn, redis, error)",
            ["reason"],
            registry=r,
        )
        self.shadow_requests = Counter(
            "gateway_shadow_requests_total",
            "Mirrored requests, by backend and outcome",
            ["backend", "outcome"],
            registry=r,
        )
        self.shadow_comparisons = Counter(
            "gateway_shadow_comparisons_total",
            "Field comparisons of mirrored turns (match, mismatch, noise, missing)",
            ["field", "outcome"],
            registry=r,
        )
        self.shadow_hook_errors = Counter(
            "gateway_shadow_errors_total",
            "Failures inside shadow work (caught, never raised)",
            ["operation"],
            registry=r,
        )
        self.route_hints = Counter(
            "gateway_route_hints_total",
            "Split mode: where the gateway told nginx to send a chat request (chat_legacy: nginx "
            "carried it to legacy itself)",
            ["upstream"],
            registry=r,
        )
        self.flag_version = Gauge(
            "gateway_flag_version", "Flag version this instance routes on", registry=r
        )
        self.flags_redis_up = Gauge(
            "gateway_flags_redis_up", "1 when the last flag refresh reached Redis", registry=r
        )
        self.unleash_up = Gauge(
            "gateway_unleash_up",
            "1 when the SDK's polls reach Unleash (absent: not used)",
            registry=r,
        )
        self.routing_percent = Gauge(
            "gateway_routing_percent",
            "Effective share in force: share=new_chat (0 when switched off) or shadow",
            ["share"],
            registry=r,
        )
        self.routing_source = Gauge(
            "gateway_routing_source",
            "1 for what decides routing now: env+redis, unleash, unleash-cache or bootstrap",
            ["source"],
            registry=r,
        )
        self._served: dict[tuple[str, str, str, int], tuple[Any, Any, Any]] = {}

    def answered_itself(self, status: int, seconds: float) -> None:
        """A chat request the gateway answered without a backend (a refusal, its own error,
        still starting): counted as backend `gateway`, so error rates include them."""
        self.requests.labels(backend="gateway", status=f"{status // 100}xx").inc()
        self.latency.labels(backend="gateway").observe(seconds)

    def served(self, decided: str, reason: str, backend: str, status: int, seconds: float) -> None:
        """One answered chat request: its decision, status class and latency. The labelled
        children are looked up once per combination (`labels()` costs microseconds a call)."""
        key = (decided, reason, backend, status // 100)
        children = self._served.get(key)
        if children is None:
            children = self._served[key] = (
                self.decisions.labels(backend=decided, reason=reason),
                self.requests.labels(backend=backend, status=f"{status // 100}xx"),
                self.latency.labels(backend=backend),
            )
        children[0].inc()
        children[1].inc()
        children[2].observe(seconds)
