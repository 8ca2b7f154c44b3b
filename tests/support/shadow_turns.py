"""A visitor's turn as the shadow mirror receives it after the visitor was answered."""

from __future__ import annotations

from proxy import UpstreamReply, Visitor

SESSION = "abcdefgh12345678"
VISITOR = Visitor("198.51.100.7", "http", "198.51.100.7", False, {})
REPLY = UpstreamReply(200, [], b'{"sessionId": "abcdefgh12345678", "step": "name"}', SESSION)
"""The primary's answer to the turn, naming `SESSION`."""
