"""A local fake LeadProsper over real HTTP, for tests where the worker runs in another process.

It answers like LeadProsper's direct post: ACCEPTED once per `external_lead_id`, DUPLICATED for
a repeat. `hold` makes it keep requests open (a worker can then be killed mid-submission).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLeadProsper:
    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.accepted: dict[str, dict[str, Any]] = {}
        self.hold = threading.Event()
        self.release = threading.Event()
        self.got_request = threading.Event()
        self.echo = False
        """Refuse every lead, echoing it back in the ways partners do (message, status)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real service

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                payload = json.loads(self.rfile.read(length))
                fake.received.append(payload)
                fake.got_request.set()
                if fake.hold.is_set():
                    fake.release.wait(timeout=30)
                    return  # the client is gone by now; answer nothing
                lead_id = payload.get("external_lead_id", "")
                if fake.echo:
                    shapes = [
                        {"status": "ERROR", "message": f"invalid lead: {json.dumps(payload)}"},
                        {"status": payload.get("email", ""), "message": "?"},
                        {"status": "DUPLICATED", "message": f"seen {payload.get('phone')}"},
                    ]
                    body = shapes[len(fake.received) % len(shapes)]
                elif lead_id in fake.accepted:
                    body = {"status": "DUPLICATED", "message": "duplicate lead"}
                else:
                    fake.accepted[lead_id] = payload
                    body = {"status": "ACCEPTED", "lead_id": len(fake.accepted)}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/direct_post"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    """Serve on a port given as the only argument, for benchmarks (in its own process).

    Same answers as `FakeLeadProsper`, served by aiohttp on uvloop: the thread-per-connection
    server above answered about 600 requests/s, which capped the worker benchmark, not the worker.
    """
    import aiohttp.web
    import uvloop

    accepted: set[str] = set()

    async def direct_post(request: aiohttp.web.Request) -> aiohttp.web.Response:
        payload = await request.json()
        lead_id = payload.get("external_lead_id", "")
        if lead_id in accepted:
            body: dict[str, Any] = {"status": "DUPLICATED", "message": "duplicate lead"}
        else:
            accepted.add(lead_id)
            body = {"status": "ACCEPTED", "lead_id": len(accepted)}
        return aiohttp.web.json_response(body)

    app = aiohttp.web.Application()
    app.router.add_post("/direct_post", direct_post)
    print(f"http://127.0.0.1:{sys.argv[1]}/direct_post", flush=True)
    uvloop.install()
    aiohttp.web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
