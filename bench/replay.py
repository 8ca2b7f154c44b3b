"""Replay throughput: recorded conversations per second through the in-process new engine in
shadow mode (`proxy.Replayer`, as `chatctl replay` runs it), against a real redis-server, at
several concurrencies. Not a test: it prints numbers.

Usage: .venv/bin/python -m bench.replay [--conversations 300] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from common import LogSettings, ValueDigest, configure_logging
from newchat import load_settings, open_services, value_key
from proxy import EngineUpstream, Experiment, Replayer, Transcript, load_rules
from proxy._transcript import LegacyReply, Turn
from tests.support.processes import RedisServer

MESSAGES = ["I was rear ended on the freeway and my neck hurts", "Ann Lee", "555-201-7788",
            "ann@example.com", "90210"]  # fmt: skip
STEPS = ["name", "phone", "email", "zip", "done"]


def transcripts(count: int) -> list[Transcript]:
    contact = {"name": "Ann Lee", "phone": "5552017788", "email": "ann@example.com",
               "zip": "90210"}  # fmt: skip
    turns = [
        Turn(
            message,
            LegacyReply(
                status=200,
                category="personal_injury",
                step=step,
                done=step == "done",
                contact=contact,
            ),
        )
        for message, step in zip(MESSAGES, STEPS, strict=True)
    ]
    return [Transcript(f"bench-{n}", turns) for n in range(count)]


async def measure(conversations: int, concurrencies: list[int]) -> dict[int, float]:
    """Conversations per second at each concurrency (each run on fresh shadow sessions)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    server = RedisServer(workdir)
    configure_logging(LogSettings(file=str(workdir / "bench.log"), stdout=False))
    settings = load_settings({"REDIS_URL": server.url, "SESSION_SECRET": "bench"})
    rates = {}
    try:
        async with open_services(settings) as services:
            experiment = Experiment(load_rules(), lambda op, exc: None,
                                    digest=ValueDigest(value_key(settings.session)))  # fmt: skip
            engine = EngineUpstream(services, timeout_seconds=10.0)
            for concurrency in concurrencies:
                replayer = Replayer(engine, experiment, concurrency=concurrency)
                started = time.perf_counter()
                results = await replayer.run(transcripts(conversations))
                elapsed = time.perf_counter() - started
                if len(results) != conversations * (len(MESSAGES) + 1):  # turns and a lead
                    raise RuntimeError(f"{len(results)} results: the replay lost some")
                rates[concurrency] = conversations / elapsed
    finally:
        server.stop()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    rates = asyncio.run(measure(args.conversations, args.concurrency))
    print(f"replay, {args.conversations} conversations of {len(MESSAGES)} turns and a lead "
          "(in-process engine, shadow mode, real Redis)")  # fmt: skip
    for concurrency, rate in rates.items():
        print(f"  concurrency {concurrency:>3}: {rate:7.1f} conversations/s "
              f"({rate * (len(MESSAGES) + 1):.0f} turns/s)")  # fmt: skip


if __name__ == "__main__":
    main()
