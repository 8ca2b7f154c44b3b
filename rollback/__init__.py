"""Rollback and the operators' evidence: flag rollback verified on every gateway, nginx straight
to PHP and back, data backup and restore, the guardian, and the performance report. Imports
`common` and `flags`.
"""

from rollback._backup import NAMESPACES, PATTERNS, Entry, Header
from rollback._backup import create as create_backup
from rollback._backup import read as read_backup
from rollback._errors import BackupError, ConfigError
from rollback._flags import plan as flag_rollback_plan
from rollback._flags import probe_unleash, roll_back_flags, switch_unleash_off
from rollback._full import NginxTarget, Say, mode_before_rollback, site_mode, switch, verify
from rollback._guardian import Guardian, GuardSettings, Trip, WindowState, judge, window_delta
from rollback._lead_merge import LeadCounts, LeadState
from rollback._nginx_config import (
    MODES,
    Mode,
    SiteConfig,
    check_site_file,
    mode_of,
    nginx_test,
    render,
)
from rollback._performance import PerformanceReport, Target
from rollback._performance import build as build_performance_report
from rollback._performance import from_files as performance_report_from_files
from rollback._restore import KeyCounts, RestorePlan, replace_patterns
from rollback._restore import restore as restore_backup
from rollback._settings import RollbackSettings, UnleashAdminSettings, load_rollback_settings

__all__ = [
    "MODES",
    "NAMESPACES",
    "PATTERNS",
    "BackupError",
    "ConfigError",
    "Entry",
    "GuardSettings",
    "Guardian",
    "Header",
    "KeyCounts",
    "LeadCounts",
    "LeadState",
    "Mode",
    "NginxTarget",
    "PerformanceReport",
    "RestorePlan",
    "RollbackSettings",
    "Say",
    "SiteConfig",
    "Target",
    "Trip",
    "UnleashAdminSettings",
    "WindowState",
    "build_performance_report",
    "check_site_file",
    "create_backup",
    "flag_rollback_plan",
    "judge",
    "load_rollback_settings",
    "mode_before_rollback",
    "mode_of",
    "nginx_test",
    "performance_report_from_files",
    "probe_unleash",
    "read_backup",
    "render",
    "replace_patterns",
    "restore_backup",
    "roll_back_flags",
    "site_mode",
    "switch",
    "switch_unleash_off",
    "verify",
    "window_delta",
]
