"""Benchmark of the new engine: chat turns per second with p50/p99 per turn (in-process engine,
real redis-server, offline classifier), and worker leads per second against a local fake
LeadProsper over real HTTP. Not a test: it prints numbers.

Usage: .venv/bin/python -m bench.engine [--conversations 400] [--concurrency 32] [--leads 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

from common import LogSettings, configure_logging
from newchat import load_settings, provide_http_client, provide_services
from tests.support.leads import make_lead
from tests.support.processes import RedisServer, free_port, wait_for_port

TURNS = [
    "I was rear ended on the freeway and my neck hurts",
    "Ann Lee",
    "555-201-7788",
    "ann@example.com",
    "90210",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_turns(
    env: dict[str, str], conversations: int, concurrency: int
) -> dict[str, float]:
    redis = Redis.from_url(env["REDIS_URL"])
    async with httpx.AsyncClient() as http:
        engine = provide_services(load_settings(env), redis, http)
        latencies: list[float] = []
        gate = asyncio.Semaphore(concurrency)

        async def conversation() -> None:
            async with gate:
                state = await engine.conversation.resume(None)
                for message in TURNS:
                    started = time.perf_counter()
                    state = await engine.conversation.resume(state.id)
                    await engine.conversation.turn(state, message)
                    latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(conversation() for _ in range(conversations)))
        elapsed = time.perf_counter() - started
    await redis.aclose()
    return {
        "turns": len(latencies),
        "turns_per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


async def bench_worker(env: dict[str, str], leads: int) -> dict[str, float]:
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_leadprosper", str(port)],
        stdout=subprocess.DEVNULL,
    )
    if not wait_for_port(port):
        raise RuntimeError("the fake LeadProsper did not start")
    env = env | {
        "LEADPROSPER_API_URL": f"http://127.0.0.1:{port}/direct_post",
        "WORKER_CONCURRENCY": "32",
    }
    redis = Redis.from_url(env["REDIS_URL"])
    await redis.flushall()
    async with provide_http_client() as http:  # what `chatctl worker` uses
        engine = provide_services(load_settings(env), redis, http)
        for n in range(leads):
            await engine.queue.enqueue(make_lead(n))
        started = time.perf_counter()
        summary = await engine.worker().run(burst=True)
        elapsed = time.perf_counter() - started
    await redis.aclose()
    fake.terminate()
    fake.wait()
    return {"leads": summary.accepted, "leads_per_second": summary.accepted / elapsed}


async def measure(
    conversations: int = 400, concurrency: int = 32, leads: int = 3000
) -> tuple[dict[str, float], dict[str, float]]:
    """(chat turns, lead worker) results, against a redis-server of their own."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    server = RedisServer(workdir)
    configure_logging(LogSettings(file=str(workdir / "bench.log"), stdout=False))
    env = {
        "REDIS_URL": server.url,
        "SESSION_SECRET": "bench",
        "LEADPROSPER_API_KEY": "k",
        "LEADPROSPER_CAMPAIGN_ID": "1",
        "LEADPROSPER_SUPPLIER_ID": "2",
        "RATE_LIMIT_PER_MINUTE": "1000000",
    }
    try:
        turns = await bench_turns(env, conversations, concurrency)
        worker = await bench_worker(env, leads)
    finally:
        server.stop()
    return turns, worker


async def main(args: argparse.Namespace) -> None:
    turns, worker = await measure(args.conversations, args.concurrency, args.leads)
    print(
        f"chat turns (in-process engine, real Redis, offline classifier, "
        f"{args.concurrency} concurrent conversations)"
    )
    print(
        f"  {turns['turns']:.0f} turns: {turns['turns_per_second']:.0f} turns/s, "
        f"p50 {turns['p50_ms']:.2f} ms, p99 {turns['p99_ms']:.2f} ms per turn"
    )
    print("lead worker (one process, concurrency 32, local fake LeadProsper in its own process)")
    print(f"  {worker['leads']:.0f} leads: {worker['leads_per_second']:.0f} leads/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--leads", type=int, default=3000)
    asyncio.run(main(parser.parse_args()))
