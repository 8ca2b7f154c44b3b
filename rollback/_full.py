"""Full rollback: nginx sends /api/chat straight to legacy PHP (or back through the gateway).

Steps, each printed: render the site file for the target mode, write it (the previous file is
kept next to it), `nginx -t`, graceful reload, then a real request through nginx proving who
answers (`X-Chat-Backend` is set only by the gateway). A failed `nginx -t` or reload puts the
previous file back. The result is True only when the verification request passed.
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Protocol

import httpx
import msgspec

from rollback._nginx_config import Mode, SiteConfig, mode_of, nginx_test, render


class NginxTarget(msgspec.Struct, frozen=True):
    site_file: str = "/etc/nginx/sites-available/chat-system"
    nginx_conf: str = ""
    """Main config for `nginx -t -c`; empty: the system's."""
    reload_command: str = ""
    """Empty: `nginx -s reload` (with `-c` when `nginx_conf` is set)."""
    verify_url: str = "http://127.0.0.1/api/chat"
    site: SiteConfig = msgspec.field(default_factory=SiteConfig)


class Say(Protocol):
    """Prints one step for the operator (`error`: a failure, for stderr)."""

    def __call__(self, message: str, *, error: bool = False) -> None: ...


def site_mode(site_file: Path) -> Mode | None:
    """The mode the site file is in now (None: absent, or not rendered by us)."""
    return mode_of(site_file.read_text()) if site_file.exists() else None


def mode_before_rollback(site_file: Path) -> Mode:
    """Where `rollback full --undo` goes back to: the mode kept in `<site>.previous` when the
    rollback wrote it and it routed through the gateway (gateway or split), else gateway."""
    before = site_mode(site_file.with_name(site_file.name + ".previous"))
    return before if before in ("gateway", "split") else "gateway"


def _reload_command(target: NginxTarget) -> list[str]:
    if target.reload_command:
        return shlex.split(target.reload_command)
    if target.nginx_conf:
        return ["nginx", "-c", target.nginx_conf, "-p", str(Path(target.nginx_conf).parent),
                "-s", "reload"]  # fmt: skip
    return ["nginx", "-s", "reload"]


def verify(mode: Mode, url: str, within: float = 10.0) -> tuple[bool, str]:
    """A real request through nginx: the gateway answers (gateway and split modes: a request
    without a route cookie goes through it) or legacy does (legacy mode)."""
    deadline = time.monotonic() + within
    detail = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=3.0)
        except httpx.HTTPError as exc:
            detail = f"request failed: {type(exc).__name__}"
        else:
            through_gateway = "x-chat-backend" in response.headers
            if response.status_code == 200 and through_gateway == (mode != "legacy"):
                who = "the gateway" if through_gateway else "legacy PHP directly"
                return True, f"HTTP 200 from {who}"
            detail = f"HTTP {response.status_code}, through gateway: {through_gateway}"
        time.sleep(0.2)
    return False, detail


def switch(mode: Mode, target: NginxTarget, *, dry_run: bool, say: Say) -> bool:
    site_file = Path(target.site_file)
    current = site_file.read_text() if site_file.exists() else ""
    wanted = render(mode, target.site)
    reload_command = _reload_command(target)
    say(f"plan: {site_file} from {mode_of(current) or 'absent/unknown'} to {mode} mode; "
        f"nginx -t; reload ({' '.join(reload_command)}); verify GET {target.verify_url}")  # fmt: skip
    if dry_run:
        diff = difflib.unified_diff(
            current.splitlines(), wanted.splitlines(), "current", "rendered", lineterm=""
        )
        for line in diff:
            say(f"  {line}")
        say("dry run: nothing changed")
        return True
    previous = site_file.with_name(site_file.name + ".previous")
    if current:
        previous.write_text(current)
    _write_atomically(site_file, wanted)
    say(f"wrote {site_file} ({mode} mode); previous kept in {previous.name}")
    ok, output = nginx_test(target.nginx_conf or None)
    if not ok:
        _put_back(site_file, current)
        say(f"FAILED nginx -t: {output}; the previous config is back, nothing reloaded")
        return False
    say("nginx -t: ok")
    try:
        done = subprocess.run(
            reload_command, capture_output=True, text=True, timeout=30, check=False
        )
        reloaded, output = done.returncode == 0, (done.stderr or done.stdout).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        reloaded, output = False, str(exc)
    if not reloaded:
        _put_back(site_file, current)
        say(f"FAILED reload: {output}; the previous config file is back")
        return False
    say("reloaded gracefully (in-flight requests finish on the old workers)")
    passed, detail = verify(mode, target.verify_url)
    say(f"{'verified' if passed else 'VERIFICATION FAILED'}: {detail}")
    return passed


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _put_back(path: Path, text: str) -> None:
    if text:
        _write_atomically(path, text)
    else:
        path.unlink(missing_ok=True)
