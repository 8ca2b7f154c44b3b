"""Prometheus metrics of the engine, on a registry owned by the app (so tests never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.detections = Counter(
            "chat_category_detections_total",
            "Practice-area detections",
            ["method", "category"],
            registry=r,
        )
        self.detection_fallbacks = Counter(
            "chat_detection_fallbacks_total",
            "OpenAI failures answered offline",
            ["reason"],
            registry=r,
        )
        self.turns = Counter("chat_turns_total", "Chat turns answered", ["step"], registry=r)
        self.leads_enqueued = Counter(
            "chat_leads_enqueued_total", "Leads queued for submission", registry=r
        )
        self.lead_corrections = Counter(
            "chat_lead_corrections_total",
            "Corrections a visitor sent after confirming: applied to the waiting lead, or too "
            "late because a worker had claimed it",
            ["outcome"],
            registry=r,
        )
        self.lead_submissions = Counter(
            "chat_lead_submissions_total", "Lead submission outcomes", ["outcome"], registry=r
        )
        self.lead_submission_seconds = Histogram(
            "chat_lead_submission_seconds", "LeadProsper call latency", registry=r
        )
        self.rate_limited = Counter(
            "chat_rate_limited_total",
            "Requests refused by the rate limiter",
            ["mode"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "chat_request_seconds",
            "Engine request latency",
            ["route", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
        )
        self.queue_depth = Gauge(
            "chat_lead_queue_depth", "Leads per queue state", ["state"], registry=r
        )
