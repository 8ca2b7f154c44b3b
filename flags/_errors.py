"""Errors of the flags package.

ValueError
└── FlagError        an unknown flag, or a value it cannot take (an operator's input, or
                     garbage written into Redis by hand); the message says what is accepted

Settings come as `common.SettingsError`, Redis failures as `common.StoreUnavailable`. Flag
evaluation on the request path never raises.
"""

from __future__ import annotations


class FlagError(ValueError):
    """An unknown flag or a value it cannot take; the message says what is accepted."""
