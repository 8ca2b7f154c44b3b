"""Errors of rollback. Each is shown to the operator as one line, and the command exits non-zero
having changed nothing.

ValueError
├── BackupError     a file that is not a complete, unaltered backup; says what is wrong
└── ConfigError     a value that would not make a valid, safe nginx config; says which

Settings come as `common.SettingsError`, Redis failures as `common.StoreUnavailable`.
"""

from __future__ import annotations


class BackupError(ValueError):
    """A file that is not a complete, unaltered backup; says what is wrong."""


class ConfigError(ValueError):
    """A value that would not make a valid, safe nginx config; says which."""
