"""Domain errors of the engine. One function, `newchat._endpoints.error_reply`, turns them
into HTTP replies; nothing else in the engine knows about HTTP statuses.

ChatError
├── InvalidRequest      the request cannot be read (bad JSON, not UTF-8, empty)     -> 400
├── InvalidField        it reads, but a field is wrong (type, empty, too long)      -> 422
├── Forbidden           a visitor sent what only the gateway may send               -> 403
├── RateLimited         too many turns from one client (`retry_after` seconds)      -> 429
└── DependencyDown      Redis (or another dependency) failed (`action` says what to do) -> 503

Redis failures arrive as `common.StoreUnavailable` (translated where Redis is called) and are
answered as `DependencyDown`.
"""

from __future__ import annotations


class ChatError(Exception):
    code = "chat_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(ChatError):
    code = "invalid_request"


class InvalidField(ChatError):
    code = "invalid_field"


class Forbidden(ChatError):
    code = "forbidden"


class RateLimited(ChatError):
    code = "rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DependencyDown(ChatError):
    code = "dependency_unavailable"

    def __init__(self, dependency: str, detail: str, action: str) -> None:
        super().__init__(detail)
        self.dependency = dependency
        self.action = action
