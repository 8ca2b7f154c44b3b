"""Gateway benchmark: legacy forwarding and the in-process new engine against nginx, in one run.

    .venv/bin/python -m bench.gateway [--seconds 5]

Starts its own redis-server, a legacy backend as production runs it (nginx + php-fpm serving the
PHP stand-in), nginx `proxy_pass` in front of that legacy, and `chatctl serve` gateways (one
uvicorn worker each). wrk drives each target with the same JSON POST, at 32 connections for
throughput and 1 connection for latency, and one table is printed with ratios against nginx.
The split rows put the site's own nginx config in split mode in front of the gateway: a turn
of a conversation pinned to legacy (nginx carries it; the gateway only answers where), and a
first turn (through the gateway, which pins it). The shadow rows send real legacy chat turns
(each a new conversation with a session), with shadow at 0 % and at 100 % (every turn replayed
on the in-process new engine). Needs wrk, nginx and php-fpm (Debian packages).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chatctl import free_port, wait_for_port
from common import derive_secret
from proxy import Http1Pool, TokenSigner, UpstreamSettings
from rollback import SiteConfig, render
from tests.support.processes import LEGACY_ROUTER, RedisServer

MESSAGE = (
    "Hello, I was driving home from work last Tuesday when another car ran a red light and hit "
    "my passenger side. My shoulder still hurts and I missed three days of work. What can I do?"
)
BODY = '{"message": "%s", "sessionId": null}' % MESSAGE  # noqa: UP031 - a literal JSON body


@dataclass
class Row:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    p50_single_ms: float
    errors: int


def _php_fpm() -> str:
    for candidate in ("php-fpm", *(f"php-fpm8.{n}" for n in range(9, 0, -1))):
        found = shutil.which(candidate) or (
            f"/usr/sbin/{candidate}" if Path(f"/usr/sbin/{candidate}").exists() else None
        )
        if found:
            return found
    raise SystemExit("php-fpm is not installed: apt-get install php-fpm")


def _nginx_conf(workdir: Path, body: str) -> Path:
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    {body}
}}
"""
    )
    return conf


@contextlib.contextmanager
def _process(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    process = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if not wait_for_port(port, timeout=20):
            raise SystemExit(f"{args[0]} did not listen on {port}")
        yield process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def legacy_backend(workdir: Path) -> Iterator[int]:
    """nginx + php-fpm serving the PHP stand-in, as a production legacy would run."""
    fpm_port, port = free_port(), free_port()
    fpm_conf = workdir / "php-fpm.conf"
    fpm_conf.write_text(
        f"""
[global]
pid = {workdir}/php-fpm.pid
error_log = {workdir}/php-fpm.log
daemonize = no
[bench]
listen = 127.0.0.1:{fpm_port}
pm = static
pm.max_children = 4
clear_env = no
"""
    )
    env = dict(os.environ) | {"LEGACY_DATA_DIR": str(workdir / "legacy")}
    conf = _nginx_conf(
        workdir / "legacy-nginx",
        f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {LEGACY_ROUTER};
            fastcgi_pass 127.0.0.1:{fpm_port};
        }}
    }}
""",
    )
    with (
        _process([_php_fpm(), "-F", "-R", "-y", str(fpm_conf)], fpm_port, env),
        _process(["nginx", "-c", str(conf), "-p", str(conf.parent)], port),
    ):
        yield port


@contextlib.contextmanager
def nginx_proxy(workdir: Path, legacy_port: int) -> Iterator[int]:
    port = free_port()
    conf = _nginx_conf(
        workdir / "proxy-nginx",
        f"""
    upstream legacy {{ server 127.0.0.1:{legacy_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://legacy;
        }}
    }}
""",
    )
    with _process(["nginx", "-c", str(conf), "-p", str(conf.parent)], port):
        yield port


@contextlib.contextmanager
def gateway(
    workdir: Path,
    redis_url: str,
    legacy_port: int,
    percent: int,
    shadow: int = 0,
    workers: int = 1,
) -> Iterator[tuple[int, int]]:
    """(port, pid of the serving process)."""
    port = free_port()
    chatctl = str(Path(sys.executable).with_name("chatctl"))
    env = dict(os.environ) | {
        "PORT": str(port),
        "REDIS_URL": redis_url,
        "LEGACY_URL": f"http://127.0.0.1:{legacy_port}/api/chat",
        "NEW_CHAT_PERCENT": str(percent),
        "SHADOW_PERCENT": str(shadow),
        "SESSION_SECRET": "bench-secret",
        "LOG_FILE": str(workdir / f"gateway-{port}.log"),
        "FLAG_STATE_FILE": str(workdir / f"gateway-{port}-flags.json"),
        "RATE_LIMIT_PER_MINUTE": "100000000",
    }
    env.pop("UNLEASH_URL", None)
    with _process([chatctl, "serve", "--workers", str(workers)], port, env) as pid:
        yield port, pid


PINNED = "chat_route=" + TokenSigner(derive_secret("bench-secret", "routing")).route_cookie(
    "legacy", "benchconversation0123456"
)
"""A conversation pinned to legacy, as the bench gateways (SESSION_SECRET=bench-secret) sign it."""


@contextlib.contextmanager
def split_site(workdir: Path, gateway_port: int, legacy_port: int) -> Iterator[int]:
    """The site's own nginx config (`chatctl nginx render --mode split`) in front of both."""
    port = free_port()
    (workdir / "split-nginx").mkdir(exist_ok=True)
    site = render(
        "split",
        SiteConfig(
            gateway=f"127.0.0.1:{gateway_port}",
            legacy=f"127.0.0.1:{legacy_port}",
            listen=f"127.0.0.1:{port}",
            chat_log=str(workdir / "split-nginx" / "chat-split.log"),  # its cost is part of it
            access_log="off",  # as the proxy_pass anchor
        ),
    )
    conf = _nginx_conf(workdir / "split-nginx", site)
    with _process(["nginx", "-c", str(conf), "-p", str(conf.parent)], port):
        yield port


@contextlib.contextmanager
def ceiling(workdir: Path, protocol: str = "httptools") -> Iterator[int]:
    """`bench.ceiling:app` under uvicorn, one worker, as the gateway runs (`protocol`:
    uvicorn's own `httptools`, or `gateway`, the gateway's subclass of it)."""
    port = free_port()
    args = [sys.executable, "-m", "bench.ceiling", str(port), protocol]
    with _process(args, port, dict(os.environ) | {"PYTHONPATH": str(Path.cwd())}):
        yield port


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(url: str, connections: int, seconds: int, script: Path) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx count)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        found = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        if not found:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return rps, percentile("50"), percentile("99"), failed


async def _client_rate(kind: str, url: str, seconds: int) -> float:
    """Requests/s of one HTTP client library alone, 32 concurrent requests, same POST."""
    import aiohttp  # noqa: PLC0415
    import httpx  # noqa: PLC0415

    body = BODY.encode()
    headers = {"Content-Type": "application/json"}
    done = 0
    stop = time.perf_counter() + seconds

    async def with_aiohttp(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            done += 1

    async def with_httpx(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await client.post(url, content=body, headers=headers)
            done += 1

    async def with_ours(pool: Http1Pool) -> None:
        nonlocal done
        target = url.split("/", 3)[3].encode()
        while time.perf_counter() < stop:
            await pool.request(
                "POST", b"/" + target, [(b"content-type", b"application/json")], body
            )
            done += 1

    if kind == "aiohttp":
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            await asyncio.gather(*(with_aiohttp(session) for _ in range(32)))
    elif kind == "ours (proxy._http1)":
        defaults = UpstreamSettings(url=url)
        pool = Http1Pool(
            url,
            pool_size=64,
            connect_timeout=defaults.connect_timeout_seconds,
            read_timeout=defaults.read_timeout_seconds,
            max_reply_bytes=defaults.max_reply_bytes,
            idle_seconds=defaults.keepalive_seconds,
        )
        await asyncio.gather(*(with_ours(pool) for _ in range(32)))
        await pool.close()
    else:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await asyncio.gather(*(with_httpx(client) for _ in range(32)))
    return done / seconds


def client_rates(url: str, seconds: int) -> dict[str, float]:
    import uvloop  # noqa: PLC0415 - the loop the gateway runs on under uvicorn

    kinds = ("httpx", "aiohttp", "ours (proxy._http1)")
    return {kind: uvloop.run(_client_rate(kind, url, seconds)) for kind in kinds}


def _shadow_counts(metrics_url: str) -> tuple[float, float]:
    """(mirrored turns, turns dropped as busy/cpu) from a gateway's /metrics."""
    import httpx  # noqa: PLC0415

    mirrored = skipped = 0.0
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith("gateway_shadow_requests_total{"):
            mirrored += float(line.rsplit(" ", 1)[1])
        elif line.startswith("gateway_shadow_skipped_total{"):
            skipped += float(line.rsplit(" ", 1)[1])
    return mirrored, skipped


def measure_row(name: str, url: str, seconds: int, script: Path) -> Row:
    wrk(url, 8, 1, script)  # warm up pools and caches
    rps, p50, p99, errors = wrk(url, 32, seconds, script)
    _, single_p50, _, single_errors = wrk(url, 1, max(1, seconds // 2), script)
    return Row(name, rps, p50, p99, single_p50, errors + single_errors)


@dataclass
class Run:
    """Everything one benchmark run measured."""

    rows: list[Row]
    memory: dict[str, float]
    shadow_counts: tuple[float, float]
    clients: dict[str, float]


def _workdir() -> tuple[Path, Path]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    for sub in ("legacy-nginx", "proxy-nginx", "legacy"):
        (workdir / sub).mkdir()
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return workdir, script


def run_all(workdir: Path, script: Path, redis_url: str, seconds: int) -> Run:
    legacy_path = "/api/chat?debug=echo"  # the stand-in's side-effect-free reply (~500 bytes)
    run = Run([], {}, (0.0, 0.0), {})

    def row(name: str, url: str) -> None:
        run.rows.append(measure_row(name, url, seconds, script))

    with legacy_backend(workdir) as legacy_port:
        base = f"http://127.0.0.1:{legacy_port}"
        row("legacy direct (nginx+php-fpm)", base + legacy_path)
        run.clients = client_rates(base + legacy_path, seconds)
        with nginx_proxy(workdir, legacy_port) as port:
            row("nginx proxy_pass -> legacy", f"http://127.0.0.1:{port}{legacy_path}")
        with gateway(workdir, redis_url, legacy_port, 0) as (port, pid):
            row("gateway -> legacy", f"http://127.0.0.1:{port}{legacy_path}")
            run.memory["gateway -> legacy"] = rss_mb(pid)
            with split_site(workdir, port, legacy_port) as split_port:
                split_url = f"http://127.0.0.1:{split_port}{legacy_path}"
                pinned = workdir / "pinned.lua"
                pinned.write_text(script.read_text() + f'wrk.headers["Cookie"] = "{PINNED}"\n')
                run.rows.append(measure_row("nginx split -> legacy (pinned turn)", split_url,
                                            seconds, pinned))  # fmt: skip
                row("nginx split -> gateway (first turn)", split_url)
        with gateway(workdir, redis_url, legacy_port, 0, workers=2) as (port, _):
            row("gateway -> legacy, 2 workers", f"http://127.0.0.1:{port}{legacy_path}")
        for shadow in (0, 100):
            with gateway(workdir, redis_url, legacy_port, 0, shadow) as (port, _):
                # real legacy turns, each a new conversation with a session
                row(
                    f"gateway -> legacy turn, shadow {shadow}%", f"http://127.0.0.1:{port}/api/chat"
                )
                if shadow:
                    run.shadow_counts = _shadow_counts(f"http://127.0.0.1:{port}/metrics")
        with gateway(workdir, redis_url, legacy_port, 100) as (port, pid):
            row("gateway -> new engine (in-process)", f"http://127.0.0.1:{port}/api/chat")
            run.memory["gateway -> new engine"] = rss_mb(pid)
        with ceiling(workdir) as port:
            row("Litestar in-process ceiling", f"http://127.0.0.1:{port}/api/chat")
        with ceiling(workdir, "gateway") as port:
            row("Litestar ceiling, gateway protocol", f"http://127.0.0.1:{port}/api/chat")
    return run


def measure(seconds: int, repeat: int = 1) -> Run:
    """Every gateway row, `repeat` times over (each pass with its own redis-server and work
    directory), merged by median: a noisy neighbour then skews one pass, not the table."""
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    passes: list[Run] = []
    for _ in range(repeat):
        workdir, script = _workdir()
        redis = RedisServer(workdir)
        try:
            passes.append(run_all(workdir, script, redis.url, seconds))
        finally:
            redis.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return merge(passes)


def merge(passes: list[Run]) -> Run:
    """Medians of rates and latencies, the sum of errors, the largest memory."""
    first = passes[0]

    def median_row(name: str) -> Row:
        same = [next(row for row in run.rows if row.name == name) for run in passes]
        return Row(
            name,
            statistics.median(row.rps for row in same),
            statistics.median(row.p50_ms for row in same),
            statistics.median(row.p99_ms for row in same),
            statistics.median(row.p50_single_ms for row in same),
            sum(row.errors for row in same),
        )

    return Run(
        rows=[median_row(row.name) for row in first.rows],
        memory={name: max(run.memory[name] for run in passes) for name in first.memory},
        shadow_counts=(
            sum(run.shadow_counts[0] for run in passes),
            sum(run.shadow_counts[1] for run in passes),
        ),
        clients={
            kind: statistics.median(run.clients[kind] for run in passes) for kind in first.clients
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="Per wrk run.")
    parser.add_argument("--repeat", type=int, default=1, help="Passes, merged by median.")
    args = parser.parse_args()
    run = measure(args.seconds, args.repeat)
    print_table(run.rows)
    print_summary(run)


def print_summary(run: Run) -> None:
    by_name = {row.name: row for row in run.rows}
    engine_row = by_name.get("gateway -> new engine (in-process)")
    ceiling_row = by_name.get("Litestar in-process ceiling")
    if engine_row and ceiling_row:
        print(f"\nnew-engine turn: {engine_row.rps / ceiling_row.rps:.0%} of Litestar's "
              "in-process ceiling (target >= 30 %)")  # fmt: skip
    for name, megabytes in run.memory.items():
        print(f"gateway worker RSS after the {name} load: {megabytes:.0f} MB")
    mirrored, skipped = run.shadow_counts
    print(f"shadow 100 %: {mirrored:,.0f} turns mirrored, {skipped:,.0f} dropped under pressure "
          f"({skipped / max(1.0, mirrored + skipped):.0%})")  # fmt: skip
    print("\nHTTP client alone -> legacy, 32 concurrent requests, in one process (uvloop):")
    for kind, rate in run.clients.items():
        print(f"  {kind:<20} {rate:>10,.0f} req/s")


def print_table(rows: list[Row]) -> None:
    direct, nginx = rows[0], rows[1]
    print(f"\n{os.cpu_count()} CPUs, wrk -t1, {time.strftime('%Y-%m-%d %H:%M')}")
    print(
        f"{'target':<36} {'req/s @32':>10} {'vs nginx':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50 @1':>8} {'+p50 @1':>8} {'errors':>7}"
    )
    for row in rows:
        print(
            f"{row.name:<36} {row.rps:>10,.0f} {row.rps / nginx.rps:>8.0%} {row.p50_ms:>8.2f} "
            f"{row.p99_ms:>8.2f} {row.p50_single_ms:>8.3f} "
            f"{row.p50_single_ms - direct.p50_single_ms:>+8.3f} {row.errors:>7}"
        )


if __name__ == "__main__":
    main()
