"""Flags: where each chat conversation goes, decided in memory from env, Redis and Unleash.
Imports only `common`."""

from flags._decision import BACKENDS, Backend, Decision, Reason, bucket, decide, percent_rollout
from flags._env import (
    ENV_FLAGS,
    FlagSettings,
    env_flag_defaults,
    load_flag_settings,
    load_unleash_settings,
)
from flags._errors import FlagError
from flags._flags import Flags
from flags._model import (
    FLAG_NAMES,
    EffectiveRouting,
    FlagName,
    FlagSnapshot,
    FlagValue,
    FlagValues,
    decode_value,
    encode_value,
    flag_name,
    overlay,
    parse_value,
)
from flags._store import AuditEntry, Change, FlagStore, RuntimeFlags
from flags._unleash import (
    ToggleState,
    UnleashRollout,
    UnleashSettings,
    UnleashStatus,
    bootstrap_features,
    toggle_state,
)
from flags._unleash_admin import (
    UnleashAdmin,
    UnleashAdminError,
    UnleashRefusal,
    load_unleash_admin,
)
from flags._watcher import (
    REAPPLY_ACTION,
    FlagWatcher,
    InstanceReport,
    WatcherStatus,
    live_instances,
    wait_for_version,
)

__all__ = [
    "BACKENDS",
    "ENV_FLAGS",
    "FLAG_NAMES",
    "REAPPLY_ACTION",
    "AuditEntry",
    "Backend",
    "Change",
    "Decision",
    "EffectiveRouting",
    "FlagError",
    "FlagName",
    "FlagSettings",
    "FlagSnapshot",
    "FlagStore",
    "FlagValue",
    "FlagValues",
    "FlagWatcher",
    "Flags",
    "InstanceReport",
    "Reason",
    "RuntimeFlags",
    "ToggleState",
    "UnleashAdmin",
    "UnleashAdminError",
    "UnleashRefusal",
    "UnleashRollout",
    "UnleashSettings",
    "UnleashStatus",
    "WatcherStatus",
    "bootstrap_features",
    "bucket",
    "decide",
    "decode_value",
    "encode_value",
    "env_flag_defaults",
    "flag_name",
    "live_instances",
    "load_flag_settings",
    "load_unleash_admin",
    "load_unleash_settings",
    "overlay",
    "parse_value",
    "percent_rollout",
    "toggle_state",
    "wait_for_version",
]
