"""A realistic lead for queue, worker and benchmark tests (contact details are invented)."""

from __future__ import annotations

from newchat.leads import Lead


def make_lead(n: int = 0) -> Lead:
    return Lead(
        idempotency_key=f"session-{n}",
        first_name="Ann",
        last_name="Lee",
        email=f"ann{n}@example.com",
        phone="5552017788",
        zip="90210",
        category="family",
        description="divorce",
    )
