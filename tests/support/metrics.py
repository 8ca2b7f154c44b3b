"""Reading a Prometheus text scrape in tests."""

from __future__ import annotations


def sample_sum(metrics: str, prefix: str) -> float:
    """The sum of every sample whose line starts with `prefix` (a name, or a name and labels)."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )
