"""The visitor's address: X-Forwarded-For / X-Real-IP are believed only from trusted proxies."""

from __future__ import annotations

from collections.abc import Mapping


def client_address(peer: str | None, headers: Mapping[str, str], trusted: tuple[str, ...]) -> str:
    """Walks X-Forwarded-For from the right, skipping trusted hops; the peer when untrusted."""
    address = peer or "unknown"
    if address not in trusted:
        return address
    forwarded = headers.get("x-forwarded-for", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if hop not in trusted:
            return hop[:64]
    real_ip = headers.get("x-real-ip", "").strip()
    return real_ip[:64] if real_ip else address
