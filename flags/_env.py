"""Flag defaults from the environment (`ENABLE_NEW_CHAT`, `NEW_CHAT_PERCENT`, ...)."""

from __future__ import annotations

from collections.abc import Mapping

from flags._model import FlagError, FlagName, FlagValues, parse_value

ENV_FLAGS: dict[str, FlagName] = {
    "ENABLE_NEW_CHAT": "enable_new_chat",
    "NEW_CHAT_PERCENT": "new_chat_percent",
    "SHADOW_PERCENT": "shadow_percent",
    "CHAT_DRAIN": "drain",
    "CHAT_TESTERS": "testers",
    "SHADOW_TO_LEGACY": "shadow_legacy",
}


class EnvFlagError(ValueError):
    """Names the variable and says what it accepts."""


def env_flag_defaults(environ: Mapping[str, str]) -> tuple[FlagValues, bool]:
    """The defaults, and whether `ENABLE_NEW_CHAT=false` makes a hard kill switch."""
    values: dict[str, object] = {}
    for variable, name in ENV_FLAGS.items():
        raw = environ.get(variable, "").strip()
        if raw:
            try:
                values[name] = parse_value(name, raw)
            except FlagError as exc:
                raise EnvFlagError(f"{variable}: {exc}") from None
    defaults = FlagValues(**values)  # type: ignore[arg-type]
    return defaults, not defaults.enable_new_chat
