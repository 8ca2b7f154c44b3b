"""A real nginx serving the site config `chatctl nginx render` writes, on a free port, with every
file it needs in one folder: the nginx of the tests that go through it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.processes import free_port, run_chatctl, wait_for_port


class Nginx:
    def __init__(self, workdir: Path, site_env: dict[str, str], mode: str = "gateway") -> None:
        self.port = free_port()
        self.mode = mode
        self.workdir = workdir
        self.conf = workdir / "nginx.conf"
        self.site = workdir / "chat-system.conf"
        self.conf.write_text(
            f"worker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{ access_log off; client_body_temp_path {workdir}/body; "
            f"proxy_temp_path {workdir}/proxy; include {self.site}; }}\n"
        )
        self.chat_log = workdir / "chat-split.log"
        self.env = site_env | {
            "NGINX_CHAT_LOG": str(self.chat_log),
            "NGINX_ACCESS_LOG": str(workdir / "access.log"),
            "NGINX_SITE_FILE": str(self.site),
            "NGINX_CONF": str(self.conf),
            "NGINX_LISTEN": f"127.0.0.1:{self.port}",
            "NGINX_VERIFY_URL": f"http://127.0.0.1:{self.port}/api/chat",
        }
        rendered = run_chatctl(
            self.env, "nginx", "render", "--mode", mode, "--out", str(self.site), "--check"
        )
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        self.process = subprocess.Popen(
            ["nginx", "-c", str(self.conf), "-p", str(workdir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_for_port(self.port)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGQUIT)
        self.process.wait(timeout=15)
