"""Flag settings from the environment, read once by `load_flag_settings(environ)`: the defaults
of the run-time flags (`ENABLE_NEW_CHAT`, `NEW_CHAT_PERCENT`, ...), the hard kill switch, the
bucketing group and, when `UNLEASH_URL` is set, how to reach Unleash.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from common import SettingsError, env_http_url, env_number
from flags._errors import FlagError
from flags._model import FlagName, FlagValues, parse_value
from flags._unleash import UnleashSettings

ENV_FLAGS: dict[str, FlagName] = {
    "ENABLE_NEW_CHAT": "enable_new_chat",
    "NEW_CHAT_PERCENT": "new_chat_percent",
    "SHADOW_PERCENT": "shadow_percent",
    "CHAT_DRAIN": "drain",
    "CHAT_TESTERS": "testers",
    "SHADOW_TO_LEGACY": "shadow_legacy",
    "RECORD_PERCENT": "record_percent",
}
"""Environment variable -> the run-time flag whose default it sets."""


class FlagSettings(msgspec.Struct, frozen=True):
    defaults: FlagValues = msgspec.field(default_factory=FlagValues)
    """Values in force until an operator sets one at run time."""
    kill_switch: bool = False
    """`ENABLE_NEW_CHAT=false`: every request to legacy, whatever run-time flags say."""
    group_id: str = "new-chat"
    """Bucketing group (Unleash's flexibleRollout `groupId`; by default the toggle's name)."""
    unleash: UnleashSettings | None = None
    poll_interval_seconds: float = 1.0
    """Longest a gateway runs on old flags when a change announcement was missed."""
    state_file: str = "var/gateway-flags.json"
    """`FLAG_STATE_FILE`: the last flags this gateway applied, kept on disk, so a gateway that
    restarts after Redis lost its flags (a host reboot) still routes on them; empty: none."""


def env_flag_defaults(environ: Mapping[str, str]) -> FlagValues:
    """The run-time flags' defaults; raises SettingsError naming the variable."""
    values: dict[str, object] = {}
    for variable, name in ENV_FLAGS.items():
        raw = environ.get(variable, "").strip()
        if raw:
            try:
                values[name] = parse_value(name, raw)
            except FlagError as exc:
                raise SettingsError(f"{variable}: {exc}") from None
    return FlagValues(**values)  # type: ignore[arg-type]


def load_unleash_settings(environ: Mapping[str, str]) -> UnleashSettings | None:
    """`UNLEASH_URL` and its companions; None when Unleash is not used."""
    url = env_http_url(environ, "UNLEASH_URL")
    if not url:
        return None
    get = environ.get
    return UnleashSettings(
        url=url,
        api_token=get("UNLEASH_API_TOKEN", ""),
        app_name=get("UNLEASH_APP_NAME", "") or "chat-gateway",
        rollout_toggle=get("UNLEASH_TOGGLE", "") or "new-chat",
        shadow_toggle=get("UNLEASH_SHADOW_TOGGLE", "") or "new-chat-shadow",
        refresh_interval_seconds=env_number(environ, "UNLEASH_REFRESH_INTERVAL", 1, int, 1),
        metrics_interval_seconds=env_number(environ, "UNLEASH_METRICS_INTERVAL", 60, int, 1),
        cache_directory=get("UNLEASH_CACHE_DIR", "var/unleash-cache").strip(),
    )


def load_flag_settings(environ: Mapping[str, str]) -> FlagSettings:
    """Raises SettingsError naming the bad variable."""
    defaults = env_flag_defaults(environ)
    unleash = load_unleash_settings(environ)
    return FlagSettings(
        defaults=defaults,
        kill_switch=not defaults.enable_new_chat,
        group_id=environ.get("FLAG_GROUP_ID", "")
        or (unleash.rollout_toggle if unleash else "new-chat"),
        unleash=unleash,
        state_file=environ.get("FLAG_STATE_FILE", "var/gateway-flags.json").strip(),
    )
