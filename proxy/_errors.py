"""Errors of the gateway. None reaches a visitor as a traceback: each becomes a JSON reply
(`_gateway.error_reply`), a failover to legacy, or a counted shadow failure.

Exception
├── UpstreamError      a backend gave no usable reply; `kind`: connect, timeout, bad_reply,
│                      too_large, failed (502/504, or a failover to legacy)
├── Http1Error         the HTTP/1.1 client's failures, same kinds; `HttpUpstream` turns each
│                      into an UpstreamError at its boundary
├── RequestRejected    the visitor's request cannot be forwarded (`status`, `code`: 400, 413)
└── ClientGone         the visitor disconnected before sending the whole request (no reply)

Settings come as `common.SettingsError`, Redis failures as `common.StoreUnavailable`.
"""

from __future__ import annotations

from typing import Literal

Http1ErrorKind = Literal["connect", "timeout", "bad_reply", "too_large"]
UpstreamErrorKind = Literal["connect", "timeout", "bad_reply", "too_large", "failed"]


class UpstreamError(Exception):
    def __init__(self, kind: UpstreamErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class Http1Error(Exception):
    def __init__(self, kind: Http1ErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: Http1ErrorKind = kind
        self.detail = detail


class RequestRejected(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class ClientGone(Exception):
    """The visitor disconnected before sending the whole request."""
