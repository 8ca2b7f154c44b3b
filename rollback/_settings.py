"""Rollback settings, read once from the environment by `load_rollback_settings(environ)`:
the site's nginx (file, main config, reload, verifying URL, upstreams) and, when Unleash is
used, how to switch its toggle off through the Admin API."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from common import derive_secret, env_number
from flags import UnleashSettings, load_unleash_settings
from rollback._full import NginxTarget
from rollback._nginx_config import SiteConfig


class UnleashAdminSettings(msgspec.Struct, frozen=True):
    unleash: UnleashSettings
    """Where Unleash is and which toggle routes (the gateways' own settings)."""
    admin_token: str = ""
    """`UNLEASH_ADMIN_TOKEN`; empty: the operator switches the toggle off by hand."""
    project: str = "default"
    environment: str = ""
    """UNLEASH_ENVIRONMENT: used only when the gateways' token names no environment (`*`);
    otherwise the token's environment is the one changed (`flags.UnleashAdmin`)."""


class RollbackSettings(msgspec.Struct, frozen=True):
    nginx: NginxTarget = msgspec.field(default_factory=NginxTarget)
    unleash: UnleashAdminSettings | None = None
    """None when the gateways do not use Unleash."""
    backup_key: str = ""
    """`BACKUP_KEY`, else derived from `SESSION_SECRET` (as the routing secret is); empty when
    neither is set, and then backups can be neither made nor restored."""


def load_rollback_settings(environ: Mapping[str, str]) -> RollbackSettings:
    """Raises `common.SettingsError` naming a bad variable."""
    get = environ.get
    unleash = load_unleash_settings(environ)
    session_secret = get("SESSION_SECRET", "")
    return RollbackSettings(
        backup_key=get("BACKUP_KEY", "")
        or (derive_secret(session_secret, "backup") if session_secret else ""),
        nginx=NginxTarget(
            site_file=get("NGINX_SITE_FILE", "") or "/etc/nginx/sites-available/chat-system",
            nginx_conf=get("NGINX_CONF", ""),
            reload_command=get("NGINX_RELOAD_COMMAND", ""),
            verify_url=get("NGINX_VERIFY_URL", "") or "http://127.0.0.1/api/chat",
            site=SiteConfig(
                gateway=get("GATEWAY_UPSTREAM", "") or "127.0.0.1:3000",
                legacy=get("LEGACY_UPSTREAM", "") or "127.0.0.1:8080",
                listen=get("NGINX_LISTEN", "") or "80",
                server_name=get("NGINX_SERVER_NAME", "") or "_",
                chat_log=get("NGINX_CHAT_LOG", "") or "/var/log/nginx/chat-split.log",
                access_log=get("NGINX_ACCESS_LOG", "") or "/var/log/nginx/access.log",
                turns_per_minute=env_number(environ, "RATE_LIMIT_PER_MINUTE", 30, int, 1),
            ),
        ),
        unleash=None
        if unleash is None
        else UnleashAdminSettings(
            unleash=unleash,
            admin_token=get("UNLEASH_ADMIN_TOKEN", ""),
            project=get("UNLEASH_PROJECT", "") or "default",
            environment=get("UNLEASH_ENVIRONMENT", ""),
        ),
    )
