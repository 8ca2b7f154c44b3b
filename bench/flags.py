"""Flag decision micro-benchmark: the cost of one routing decision (issue 6 target: <= 5 us).

.venv/bin/python -m bench.flags
"""

from __future__ import annotations

import secrets
import timeit

from flags import FlagValues
from tests.support.static_flags import static_flags


def measure() -> dict[str, float]:
    """Microseconds per decision, by case."""
    ids = [secrets.token_urlsafe(16) for _ in range(10_000)]
    cases = {
        "rollout 30 % (hash per decision)": FlagValues(new_chat_percent=30),
        "rollout 0 % (no hash)": FlagValues(new_chat_percent=0),
        "master switch off": FlagValues(enable_new_chat=False),
    }
    results: dict[str, float] = {}
    runs = 200_000
    for name, values in cases.items():
        flags = static_flags(values)
        cursor = iter(ids * 100)

        def decide() -> None:
            flags.decide(pin=None, override=None, bucket_id=next(cursor))  # noqa: B023

        results[name] = min(timeit.repeat(decide, number=runs, repeat=3)) / runs * 1e6
    pinned = static_flags(FlagValues(new_chat_percent=30), group_id="g")
    seconds = min(timeit.repeat(
        lambda: pinned.decide(pin="new", override=None, bucket_id="x"), number=runs, repeat=3
    ))  # fmt: skip
    results["pinned conversation"] = seconds / runs * 1e6
    return results


def main() -> None:
    print(f"{'case':<34} {'us/decision':>12}")
    for name, micros in measure().items():
        print(f"{name:<34} {micros:>12.2f}")


if __name__ == "__main__":
    main()
