"""Practice-area detection: OpenAI when configured and answering, the offline classifier always
as the fallback. (`newchat.detection._openai` is imported only when an API key is set: the SDK
takes most of a second to load.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newchat.detection._detector import CategoryDetector, DetectionResult, Method, RemoteDetector
from newchat.detection._errors import DetectionUnavailable
from newchat.detection._offline import OfflineClassifier, normalize

if TYPE_CHECKING:
    import httpx

    from newchat._settings import OpenAISettings


def openai_detector(settings: OpenAISettings, http: httpx.AsyncClient) -> RemoteDetector:
    """The OpenAI detector; its SDK is imported on this first call, not with the package."""
    from newchat.detection._openai import OpenAIDetector  # noqa: PLC0415

    return OpenAIDetector(settings, http)


__all__ = [
    "CategoryDetector",
    "DetectionResult",
    "DetectionUnavailable",
    "Method",
    "OfflineClassifier",
    "RemoteDetector",
    "normalize",
    "openai_detector",
]
