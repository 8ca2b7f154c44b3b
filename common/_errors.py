"""Errors every package may raise or catch. Each package has its own tree below these.

Exception
├── SettingsError (ValueError)   an environment variable holds a value that cannot be used
└── StoreUnavailable             Redis failed; `kind` says how, `action` what to do

Redis errors are translated where Redis is called (`translate_redis_error`), so callers catch
`StoreUnavailable` and never redis-py's own exception classes.
"""

from __future__ import annotations

from typing import Literal

StoreFailure = Literal[
    "unreachable", "timeout", "out_of_memory", "read_only", "busy", "pool_exhausted", "error"
]


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


class StoreUnavailable(Exception):
    """Redis could not do what was asked. `kind` names the failure, `action` the operator's fix."""

    def __init__(self, kind: StoreFailure, detail: str, action: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.action = action
