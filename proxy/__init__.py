"""The gateway: nginx sends chat traffic here; each request goes to the new engine or legacy PHP."""

from proxy._app import create_gateway_app
from proxy._settings import GatewaySettings, UpstreamSettings, load_gateway_settings

__all__ = ["GatewaySettings", "UpstreamSettings", "create_gateway_app", "load_gateway_settings"]
