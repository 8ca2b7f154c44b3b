"""`proxy.asgi:app`: the gateway app built from the environment, for servers that import it
(uvicorn `--workers`). Each worker process builds its own clients; they share nothing but
Redis, which is all routing needs (pins, flags and counters live there)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from newchat import load_settings
from proxy._app import GatewayApp, create_gateway_app
from proxy._settings import load_gateway_settings

_PR_SET_PDEATHSIG = 1  # prctl(2), <linux/prctl.h>


def _exit_with_the_master() -> None:
    """A worker gets SIGTERM when the process that started it dies (Linux prctl(2)
    PR_SET_PDEATHSIG): with the master killed by -9, workers went on serving the port, orphaned,
    and a new `serve` could not start. systemd's cgroup kill covers it in production; this
    covers a shell, `make run` and containers without an init."""
    if not sys.platform.startswith("linux"):
        return
    master = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != master:  # it died before the call took effect
        os.kill(os.getpid(), signal.SIGTERM)


def app() -> GatewayApp:
    """Reads the environment once, when the server calls this factory (in each worker)."""
    _exit_with_the_master()
    settings = load_settings(os.environ)
    return create_gateway_app(settings, load_gateway_settings(os.environ, settings))
