"""Domain errors of the engine; only the web layer (`newchat.web`) turns them into HTTP.

ChatError
├── InvalidRequest      the request cannot be read (bad JSON, not UTF-8)       -> 400
├── InvalidField        it reads, but a field is wrong (type, empty, too long) -> 422
├── RateLimited         too many turns from one client                         -> 429
└── DependencyDown      Redis (or another dependency) is unreachable           -> 503
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
