"""Practice-area detection: OpenAI when configured and answering, the offline classifier otherwise.

Logs `Category detection` with method, category, confidence and latency (never the text).
"""

from __future__ import annotations

import time
from typing import Literal, Protocol

import msgspec

from common import get_logger
from newchat._categories import GENERAL, Category
from newchat._metrics import Metrics
from newchat.detection._errors import DetectionUnavailable
from newchat.detection._offline import OfflineClassifier

Method = Literal["openai", "offline"]

_log = get_logger("newchat.detection")

MATTER_CONFIDENCE = 0.6
"""The offline classifier's confidence above which a two-word answer is a matter, not a name:
"Car Crash", "Dog Bite", "Slip And Fall" score 0.61 and more; the real names "Nguyen Van An"
(0.55) and "Victor Driver" (0.49) score less (tests/unit/newchat/test_contact_capture.py)."""


class RemoteDetector(Protocol):
    """A detector outside the process (OpenAI); raises DetectionUnavailable when it can't answer."""

    @property
    def paused(self) -> bool: ...

    async def detect(self, text: str) -> tuple[Category, float]: ...


class DetectionResult(msgspec.Struct, frozen=True):
    category: Category
    confidence: float
    method: Method
    fallback_reason: str | None = None
    latency_ms: float = 0.0


class CategoryDetector:
    def __init__(
        self, offline: OfflineClassifier, metrics: Metrics, remote: RemoteDetector | None = None
    ) -> None:
        self._offline = offline
        self._remote = remote
        self._metrics = metrics

    def names_a_matter(self, text: str) -> bool:
        """Whether `text` reads as what happened ("Dog Bite", "Drunk Driving"), by the offline
        classifier alone (never OpenAI: the text may be a visitor's name), words as typed (no
        spelling correction: "Castro" is not "casero"), at `MATTER_CONFIDENCE` or more."""
        found = self._offline.classify(text, correct_spelling=False)
        return found.category != GENERAL and found.confidence >= MATTER_CONFIDENCE

    async def detect(self, text: str) -> DetectionResult:
        started = time.perf_counter()
        fallback_reason = "not_configured" if self._remote is None else None
        if self._remote is not None:
            try:
                category, confidence = await self._remote.detect(text)
                return self._done(started, category, confidence, "openai", None)
            except DetectionUnavailable as exc:
                fallback_reason = exc.reason
                _log.warning(
                    "OpenAI unavailable, using offline classifier",
                    reason=exc.reason,
                    action="check OPENAI_API_KEY, quota and https://status.openai.com",
                )
        found = self._offline.classify(text)
        return self._done(started, found.category, found.confidence, "offline", fallback_reason)

    def _done(
        self,
        started: float,
        category: Category,
        confidence: float,
        method: Method,
        fallback_reason: str | None,
    ) -> DetectionResult:
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        self._metrics.detections.labels(method=method, category=category).inc()
        if fallback_reason and fallback_reason != "not_configured":
            self._metrics.detection_fallbacks.labels(reason=fallback_reason).inc()
        _log.info(
            "Category detection",
            method=method,
            category=category,
            confidence=confidence,
            latency_ms=latency_ms,
            fallback_reason=fallback_reason,
        )
        return DetectionResult(category, confidence, method, fallback_reason, latency_ms)
