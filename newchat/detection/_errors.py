"""Errors of practice-area detection (kept apart so importing them does not load the SDK)."""

from __future__ import annotations


class DetectionUnavailable(Exception):
    """OpenAI gave no usable answer; `reason` is a short operator-facing slug."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
