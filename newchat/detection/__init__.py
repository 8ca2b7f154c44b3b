"""Practice-area detection: OpenAI when configured and answering, the offline classifier always
as the fallback. (`newchat.detection._openai` is imported only when an API key is set: the SDK
takes most of a second to load.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from newchat.detection._detector import CategoryDetector, DetectionResult, Method, RemoteDetector
from newchat.detection._errors import DetectionUnavailable
from newchat.detection._offline import OfflineClassifier, normalize
from newchat.detection._retry_after import MAX_PAUSE_SECONDS, retry_after_seconds

if TYPE_CHECKING:
    import httpx

    from newchat._settings import OpenAISettings


def openai_detector(
    settings: OpenAISettings,
    http: httpx.AsyncClient,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> RemoteDetector:
    """The OpenAI detector; its SDK is imported on this first call, not with the package.
    `clock` (monotonic) times a 429's pause, `wall_clock` (epoch) reads an HTTP-date."""
    from newchat.detection._openai import OpenAIDetector  # noqa: PLC0415

    return OpenAIDetector(settings, http, clock=clock, wall_clock=wall_clock)


__all__ = [
    "MAX_PAUSE_SECONDS",
    "CategoryDetector",
    "DetectionResult",
    "DetectionUnavailable",
    "Method",
    "OfflineClassifier",
    "RemoteDetector",
    "normalize",
    "openai_detector",
    "retry_after_seconds",
]
