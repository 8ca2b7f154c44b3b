"""How fast a change in Unleash reaches routing: a real Unleash server (the tests' own, over
PostgreSQL), the gateway's `UnleashRollout` polling it at the default interval, and 50 session
ids checked every 20 ms after each change of the rollout between 0 and 100 %. Not a test: it
prints the figure the README quotes.

Usage: .venv/bin/python -m bench.unleash [--changes 12]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time

from flags import FlagValues, UnleashRollout, UnleashSettings
from tests.support.unleash_server import TOKENS, Postgres, UnleashServer


async def measure(server: UnleashServer, changes: int) -> list[float]:
    server.rollout("new-chat", 0)
    rollout = UnleashRollout(
        UnleashSettings(
            url=server.url,
            api_token=TOKENS["development"],
            cache_directory=tempfile.mkdtemp(prefix="bench-unleash-"),
        ),
        group_id="new-chat",
        bootstrap=FlagValues(),
        instance_id="bench",
    )
    await rollout.start()
    while rollout.status().source != "unleash":  # noqa: ASYNC110 - polling is what is measured
        await asyncio.sleep(0.05)
    ids = [secrets.token_hex(8) for _ in range(50)]
    seconds = []
    for n in range(changes):
        on = n % 2 == 0
        started = time.monotonic()
        await asyncio.to_thread(server.rollout, "new-chat", 100 if on else 0)
        while not all(rollout.in_rollout(i) == on for i in ids):  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.02)
        seconds.append(time.monotonic() - started)
    await rollout.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=12)
    args = parser.parse_args()
    postgres = Postgres()
    try:
        server = UnleashServer(postgres)
        try:
            seconds = asyncio.run(measure(server, args.changes))
        finally:
            server.stop()
    finally:
        postgres.stop()
    print(f"Unleash change -> routing, {len(seconds)} changes at the default 1 s poll: "
          f"min {min(seconds):.2f} s, median {statistics.median(seconds):.2f} s, "
          f"max {max(seconds):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
