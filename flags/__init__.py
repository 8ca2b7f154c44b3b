"""Flags: where each chat conversation goes, decided in memory from env, Redis and Unleash."""

from flags._decision import BACKENDS, Backend, Decision, Reason, bucket, decide, percent_rollout
from flags._flags import Flags
from flags._model import (
    FLAG_NAMES,
    FlagError,
    FlagName,
    FlagSnapshot,
    FlagValue,
    FlagValues,
    encode_value,
    flag_name,
    parse_value,
)
from flags._store import AuditEntry, Change, FlagStore, RuntimeFlags
from flags._unleash import UnleashRollout, UnleashSettings, UnleashStatus, bootstrap_features
from flags._watcher import (
    FlagWatcher,
    InstanceReport,
    WatcherStatus,
    live_instances,
    wait_for_version,
)

__all__ = [
    "BACKENDS",
    "FLAG_NAMES",
    "AuditEntry",
    "Backend",
    "Change",
    "Decision",
    "FlagError",
    "FlagName",
    "FlagSnapshot",
    "FlagStore",
    "FlagValue",
    "FlagValues",
    "FlagWatcher",
    "Flags",
    "InstanceReport",
    "Reason",
    "RuntimeFlags",
    "UnleashRollout",
    "UnleashSettings",
    "UnleashStatus",
    "WatcherStatus",
    "bootstrap_features",
    "bucket",
    "decide",
    "encode_value",
    "flag_name",
    "live_instances",
    "parse_value",
    "percent_rollout",
    "wait_for_version",
]
