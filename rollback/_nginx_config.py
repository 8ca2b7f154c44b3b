"""Renders the site's nginx config for a mode (`gateway`, `split` or `legacy`) from `nginx/`'s
template, and checks a rendered file with `nginx -t`. No hand edits: every change is a re-render.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import msgspec

from rollback._errors import ConfigError

Mode = Literal["gateway", "legacy", "split"]
MODES: tuple[Mode, ...] = ("gateway", "legacy", "split")
TEMPLATE = Path(__file__).resolve().parents[1] / "nginx" / "chat-system.conf.template"
_ADDRESS = re.compile(r"(unix:/[\w./-]+|[\w.-]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})")
_LISTEN = re.compile(r"[\w.:\[\]]+( [a-z_]+)*")
_SERVER_NAME = re.compile(r"[\w.*_ -]+")
_LOG_PATH = re.compile(r"/[\w./-]+")
_LOG_PATH_OR_OFF = re.compile(r"off|/[\w./-]+")

_CHAT = {
    "gateway": (
        "        # legacy answers only when the gateway cannot be reached: nginx tries the backup\n"
        "        # server only for a request it could not send (it never re-sends a POST), and the\n"
        "        # gateway's own 502/503/504 replies (JSON, with X-Chat-Backend) pass through\n"
        "        proxy_pass http://$chat_gateway_pick/api/chat$is_args$args;\n"
        "        proxy_next_upstream error timeout;\n"
        "        proxy_next_upstream_tries 2;\n"
        "        add_header X-Chat-Backend $chat_fallback_backend always;\n"
        "        error_page 502 504 = @chat_unavailable;  # nginx's own: neither answered\n"
        "        @@ACCESS_LOG@@  # a location's own access_log replaces the inherited\n"
        "        # what legacy answered in the gateway's place, for `chatctl report performance`\n"
        "        access_log @@CHAT_LOG@@ chat_fallback if=$chat_fallback_backend;"
    ),
    "legacy": (
        "        error_page 502 504 = @chat_unavailable;  # legacy down: JSON, not nginx's page\n"
        "        # the gateway's rate limit is not on this path: nginx's own, from the same setting\n"
        "        limit_req zone=chat_turns burst=@@BURST@@ nodelay;\n"
        "        limit_req_status 429;\n"
        "        set $chat_retry_after @@RETRY_AFTER@@;\n"
        "        error_page 429 = @chat_rate_limited;\n"
        "        @@ACCESS_LOG@@\n"
        "        access_log @@CHAT_LOG@@ chat_legacy;  # every turn, for `chatctl report performance`\n"
        "        proxy_pass http://chat_legacy/api/chat;"
    ),
    "split": (
        "        auth_request /_chat_route;\n"
        "        auth_request_set $chat_upstream $upstream_http_x_chat_upstream;\n"
        "        auth_request_set $chat_retry_after $upstream_http_x_chat_retry_after;\n"
        "        error_page 403 = @chat_rate_limited;  # over the rate limit (the hint counts)\n"
        "        proxy_pass http://$chat_pass/api/chat$is_args$args;\n"
        "        proxy_next_upstream error timeout;  # never re-sends a POST the gateway received\n"
        "        proxy_next_upstream_tries 2;\n"
        "        add_header X-Chat-Backend $chat_direct_backend always;\n"
        "        @@ACCESS_LOG@@  # a location's own access_log replaces the inherited\n"
        "        access_log @@CHAT_LOG@@ chat_split if=$chat_direct_backend;\n"
        "        # the hint did not answer 2xx/401/403 (the gateway is down, or refused the request's\n"
        "        # headers): the gateway decides with the whole request, legacy only if it is down\n"
        "        error_page 500 = @chat_via_gateway;\n"
        "        error_page 502 504 = @chat_unavailable;  # nginx's own: neither answered"
    ),
}
_RATE_LIMITED = (
    "    # the contract's 429, as the gateway writes it (proxy._gateway.RATE_LIMITED_*)\n"
    "    location @chat_rate_limited {\n"
    "        default_type application/json;\n"
    "@@OWN_LOG@@"
    "        add_header Retry-After $chat_retry_after always;\n"
    "        add_header X-Chat-Backend legacy always;\n"
    '        return 429 \'{"error":"rate_limited",'
    '"detail":"too many messages; please wait a moment"}\';\n'
    "    }\n"
)
_UNAVAILABLE = (
    "    # neither the gateway nor legacy answered: the contract's JSON, not nginx's HTML page\n"
    "    location @chat_unavailable {\n"
    "        default_type application/json;\n"
    "@@OWN_LOG@@"
    '        return 502 \'{"error":"chat_unavailable",'
    '"detail":"the chat service is temporarily unavailable; please try again shortly"}\';\n'
    "    }\n"
)
_VIA_GATEWAY = (
    "    location @chat_via_gateway {\n"
    "        proxy_pass http://$chat_gateway_pick/api/chat$is_args$args;\n"
    "        proxy_next_upstream error timeout;\n"
    "        proxy_next_upstream_tries 2;\n"
    "        add_header X-Chat-Backend $chat_fallback_backend always;\n"
    "        error_page 502 504 = @chat_unavailable;\n"
    "        @@ACCESS_LOG@@\n"
    "        access_log @@CHAT_LOG@@ chat_split if=$chat_fallback_backend;  # legacy in its place\n"
    "    }\n"
)
# nginx's own answers on the chat path (405, 413, 429, 502), logged for the performance report
# like the gateway's: they are answers visitors got, and an error rate without them reads low.
_OWN_LOG = "        @@ACCESS_LOG@@\n        access_log @@CHAT_LOG@@ chat_own;\n"
_MALFORMED_CODES = {
    400: ("bad_request", "the request is not valid HTTP/1.1"),
    405: ("http_error", "Method Not Allowed"),
    494: ("headers_too_large", "request headers over 32 KB"),
    501: ("not_implemented", "that transfer coding is not supported"),
}
"""What nginx refuses itself while reading a request (a bad request line or framing, TRACE,
huge headers, an unknown transfer coding): its HTML pages, answered in the contract's JSON
instead. Not for what nginx cannot parse as a request at all (a garbage request line, an
unknown HTTP version, a request line over 8 KB: 400, 505, 414): an error_page there gives a 500,
so those keep nginx's own page, and 400 is taken over only on the chat location (bad body
framing, where the request line was read), on every location (the chat's too) and logged to NGINX_CHAT_LOG for chat paths. 494 is
nginx's own code for oversized headers, answered as 431 (RFC 6585 §5), as the gateway does."""
_MALFORMED = "".join(
    f"    location @refused_{code} {{\n"
    "        default_type application/json;\n"
    "        @@ACCESS_LOG@@\n"
    "        access_log @@CHAT_LOG@@ chat_own if=$chat_path;\n"
    f"        return {431 if code == 494 else code} "
    f'\'{{"error":"{error}","detail":"{detail}"}}\';\n'
    "    }\n"
    for code, (error, detail) in _MALFORMED_CODES.items()
)
_MALFORMED_PAGES = "".join(
    f"    error_page {code} = @refused_{code};\n" for code in _MALFORMED_CODES if code != 400
)
_CHAT_MALFORMED_PAGES = "".join(
    f"        error_page {code} = @refused_{code};\n" for code in _MALFORMED_CODES
)
_CRON_DOWN = "        error_page 502 504 = @cron_unavailable;  # gateway down: JSON, not HTML\n"
_CRON = {
    "gateway": _CRON_DOWN + "        proxy_pass http://chat_gateway;",
    "legacy": _CRON_DOWN
    + "        proxy_pass http://chat_gateway;  # the lead queue belongs to the new engine",
    "split": _CRON_DOWN + "        proxy_pass http://chat_gateway;",
}
_CRON_UNAVAILABLE = (
    "    # the cron path is the gateway's alone (the new engine's lead queue): no fallback\n"
    "    location @cron_unavailable {\n"
    "        default_type application/json;\n"
    '        return 502 \'{"error":"gateway_unavailable","detail":"the lead queue is '
    "served by the gateway, which did not answer; queued leads wait, none is lost\"}';\n"
    "    }\n"
)
_LOCATIONS = {
    "gateway": _UNAVAILABLE + _CRON_UNAVAILABLE + _MALFORMED,
    "split": _RATE_LIMITED + _UNAVAILABLE + _VIA_GATEWAY + _CRON_UNAVAILABLE + _MALFORMED,
    "legacy": _RATE_LIMITED + _UNAVAILABLE + _CRON_UNAVAILABLE + _MALFORMED,
}
_FALLBACK = (
    "\n# The gateway, and legacy for requests nginx could not send to it (gateway down). Idle\n"
    "# connections are dropped before the gateway's own keep-alive timeout (5 s) closes them, so\n"
    "# a stale one never sends a turn to the backup.\n"
    "upstream chat_gateway_or_legacy {\n"
    "    server @@GATEWAY@@ max_fails=0;\n"
    "    server @@LEGACY@@ backup max_fails=0;  # tried again as soon as it is back\n"
    "    keepalive 64;\n"
    "    keepalive_timeout 4s;\n"
    "}\n"
    "\n# A conversation the new engine holds (its signed route cookie says `n.`) has no backup:\n"
    '# legacy would restart it, so with the gateway down it gets the JSON 502 "try again\n'
    '# shortly" instead. A forged `n.` cookie only costs its sender the fallback.\n'
    "upstream chat_gateway_only {\n"
    "    server @@GATEWAY@@ max_fails=0;\n"
    "    keepalive 16;\n"
    "    keepalive_timeout 4s;\n"
    "}\n"
    "map $cookie_chat_route $chat_gateway_pick {\n"
    "    ~^n\\. chat_gateway_only;\n"
    "    default chat_gateway_or_legacy;\n"
    "}\n"
    "\n# A reply legacy gave in the gateway's place is labelled as the gateway labels its own.\n"
    "map $upstream_addr $chat_fallback_backend {\n"
    '    "~@@LEGACY_RE@@$" legacy;\n'
    '    default "";\n'
    "}\n"
)
_MAP = {
    "gateway": _FALLBACK
    + (
        "\n# Turns legacy answered in the gateway's place, logged like the gateway's own.\n"
        'log_format chat_fallback escape=json \'{"timestamp":"$time_iso8601",'
        '"event":"Performance: request served","route":"/api/chat",'
        '"method":"$request_method","backend":"$chat_fallback_backend",'
        '"reason":"nginx_fallback","status":$status,"latency_s":$request_time}\';\n'
    ),
    "legacy": (
        "\n# Every chat request legacy answered, logged like the gateway's own lines.\n"
        'log_format chat_legacy escape=json \'{"timestamp":"$time_iso8601",'
        '"event":"Performance: request served","route":"/api/chat",'
        '"method":"$request_method","backend":"legacy",'
        '"reason":"nginx_legacy","status":$status,"latency_s":$request_time}\';\n'
        "\n# Chat turns (POSTs) per visitor address: RATE_LIMIT_PER_MINUTE, as the gateway counts.\n"
        "map $request_method $chat_turn_client {\n"
        "    POST $binary_remote_addr;\n"
        '    default "";\n'
        "}\n"
        "limit_req_zone $chat_turn_client zone=chat_turns:10m rate=@@RATE@@r/m;\n"
    ),
    "split": _FALLBACK
    + (
        "\n# Where the hint sends a request: legacy itself, or the gateway (legacy as its backup).\n"
        "map $chat_upstream $chat_pass {\n"
        "    chat_legacy chat_legacy;\n"
        "    default $chat_gateway_pick;\n"
        "}\n"
        "\n# Replies nginx carried from legacy itself (or in the gateway's place) are labelled\n"
        "# like the gateway's.\n"
        "map $chat_upstream $chat_direct_backend {\n"
        "    chat_legacy legacy;\n"
        "    default $chat_fallback_backend;\n"
        "}\n"
        "\n# ...and logged like the gateway's, for `chatctl report performance --log`.\n"
        'log_format chat_split escape=json \'{"timestamp":"$time_iso8601",'
        '"event":"Performance: request served","route":"/api/chat",'
        '"method":"$request_method","backend":"$chat_direct_backend",'
        '"reason":"nginx_split","status":$status,"latency_s":$request_time}\';\n'
    ),
}


class SiteConfig(msgspec.Struct, frozen=True):
    gateway: str = "127.0.0.1:3000"
    legacy: str = "127.0.0.1:8080"
    listen: str = "80"
    server_name: str = "_"
    chat_log: str = "/var/log/nginx/chat-split.log"
    """Where nginx logs, as `Performance:` lines, the chat requests it answers without the
    gateway: legacy's replies in split mode and in the gateway's place, nginx's own answers
    (405, 413, 429, 502 `chat_unavailable`) and, in legacy mode, every chat request."""
    access_log: str = "/var/log/nginx/access.log"
    """The site's usual access log, kept for the chat locations (`off`: none there). A
    location's own `access_log` replaces the inherited one, and `access_log off` would cancel
    the chat log beside it, so `off` renders no directive."""
    turns_per_minute: int = 30
    """Legacy mode: chat turns per visitor address a minute (`RATE_LIMIT_PER_MINUTE`), enforced
    by nginx's `limit_req` (a leaky bucket: this many at once, then one per 60/N s), since
    no gateway counts them then."""


def render(mode: Mode, site: SiteConfig) -> str:
    for name, value, pattern in (
        ("gateway", site.gateway, _ADDRESS),
        ("legacy", site.legacy, _ADDRESS),
        ("listen", site.listen, _LISTEN),
        ("server_name", site.server_name, _SERVER_NAME),
        ("chat_log", site.chat_log, _LOG_PATH),
        ("access_log", site.access_log, _LOG_PATH_OR_OFF),
    ):
        if not pattern.fullmatch(value):
            raise ConfigError(f"{name}={value!r} is not a valid nginx value")
    text = TEMPLATE.read_text()
    for token, value in (  # the mode's blocks first: they hold the value tokens below
        ("@@CHAT@@", _CHAT[mode]),
        ("@@CRON@@", _CRON[mode]),
        ("@@MAP@@", _MAP.get(mode, "")),
        ("@@RATE_LIMITED@@", _LOCATIONS[mode]),
        ("@@OWN_LOG@@", _OWN_LOG),
        ("@@MALFORMED_PAGES@@", _MALFORMED_PAGES),
        ("@@CHAT_MALFORMED_PAGES@@", _CHAT_MALFORMED_PAGES),
        ("@@MODE@@", mode),
        ("@@LEGACY_RE@@", re.escape(site.legacy)),
        ("@@GATEWAY@@", site.gateway),
        ("@@LEGACY@@", site.legacy),
        ("@@LISTEN@@", site.listen),
        ("@@SERVER_NAME@@", site.server_name),
        ("@@CHAT_LOG@@", site.chat_log),
        ("@@ACCESS_LOG@@", _access_log_directive(site.access_log)),
        ("@@RATE@@", str(site.turns_per_minute)),
        ("@@BURST@@", str(max(site.turns_per_minute - 1, 0))),
        ("@@RETRY_AFTER@@", str(max(1, round(60 / site.turns_per_minute)))),
    ):
        text = text.replace(token, value)
    return text


def _access_log_directive(path: str) -> str:
    return "# (no site access log)" if path == "off" else f"access_log {path};"


def mode_of(text: str) -> Mode | None:
    """Which mode a rendered file is in (None: not rendered by us)."""
    found = re.search(r"^# .*Mode: (gateway|legacy|split)\.", text, re.MULTILINE)
    return found.group(1) if found else None  # type: ignore[return-value]


def check_site_file(site_file: Path, nginx_binary: str = "nginx") -> tuple[bool, str]:
    """`nginx -t` of `site_file` on its own: a temporary main config that includes only it (its
    own pid, log and temp paths, so no root is needed). `nginx -t` of the system's config did
    not read a file written elsewhere, and passed a port of 99999."""
    with tempfile.TemporaryDirectory(prefix="chat-nginx-check-") as folder:
        main = Path(folder) / "nginx.conf"
        main.write_text(
            f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{}}\n"
            f"http {{ access_log off; client_body_temp_path {folder}/body; "
            f"proxy_temp_path {folder}/proxy; include {site_file.resolve()}; }}\n"
        )
        return nginx_test(str(main), nginx_binary)


def nginx_test(nginx_conf: str | None, nginx_binary: str = "nginx") -> tuple[bool, str]:
    """`nginx -t` (with `-c` when the main config is not the system one)."""
    command = [nginx_binary, "-t"]
    if nginx_conf:
        command += ["-c", nginx_conf, "-p", str(Path(nginx_conf).parent)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"could not run {' '.join(command)}: {exc}"
    return done.returncode == 0, (done.stderr or done.stdout).strip()
