"""`proxy.asgi:app`: the gateway app built from the environment, for servers that import it
(uvicorn `--workers`). Each worker process builds its own clients; they share nothing but
Redis, which is all routing needs (pins, flags and counters live there)."""

from __future__ import annotations

import os

from newchat import load_settings
from proxy._app import GatewayApp, create_gateway_app
from proxy._settings import load_gateway_settings


def app() -> GatewayApp:
    """Reads the environment once, when the server calls this factory."""
    settings = load_settings(os.environ)
    return create_gateway_app(settings, load_gateway_settings(os.environ, settings))
