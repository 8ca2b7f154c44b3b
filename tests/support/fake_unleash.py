"""A local Unleash server speaking the client API the SDK uses (features, register, metrics).

Tests change `features` while it runs, and stop it to simulate an outage.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chatctl import free_port


def rollout_feature(
    name: str, percent: int, *, enabled: bool = True, group: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "enabled": enabled,
        "strategies": [
            {
                "name": "flexibleRollout",
                "parameters": {
                    "rollout": str(percent),
                    "stickiness": "sessionId",
                    "groupId": group or name,
                },
            }
        ],
    }


class FakeUnleash:
    def __init__(self, token: str = "test-token") -> None:  # noqa: S107 - a fake server's token
        self.token = token
        self.admin_token = "admin-token"
        self.admin_calls: list[str] = []
        self.features: list[dict[str, Any]] = []
        self.feature_requests = 0
        self.unauthorized = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                return

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == fake.token:
                    return True
                fake.unauthorized += 1
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path.split("?")[0] != "/api/client/features":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                fake.feature_requests += 1
                body = json.dumps({"version": 1, "features": fake.features}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                self.rfile.read(length)
                parts = self.path.split("/")
                if self.path.startswith("/api/admin/") and parts[-1] in ("on", "off"):
                    if self.headers.get("Authorization") != fake.admin_token:
                        fake.unauthorized += 1
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    name = parts[parts.index("features") + 1]
                    fake.admin_calls.append(self.path)
                    for feature in fake.features:
                        if feature["name"] == name:
                            feature["enabled"] = parts[-1] == "on"
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
