"""What contact capture costs per message: each parser alone, and the whole extraction.

    .venv/bin/python -m bench.contact

The parsers (nameparser, phonenumbers, email-validator) replaced hand-written regexes because
they get names, numbers and addresses right (issue 13's fidelity sets); this measures what that
costs, in microseconds per message, on the kinds of message a visitor sends at each step.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable

import phonenumbers
from email_validator import validate_email
from nameparser import HumanName

from newchat import extract_contact

MESSAGES: dict[str, tuple[str, str | None]] = {
    "name": ("Me llamo María de la Cruz", "name"),
    "phone": ("call me at (555) 201-7788 ext. 20145", "phone"),
    "email": ("it's jonas.weber@bücher.de", "email"),
    "zip": ("90210-1234", "zip"),
    "all at once": ("I'm Ann Lee, 555-201-7788, ann@example.com, 90210", None),
    "description with numbers": (
        "A truck hit me on I-35 on March 3 and they offered $15000, case number 48213",
        None,
    ),
}

HOSTILE: dict[str, tuple[str, str | None]] = {
    "181 x 'my name is' at the name step": ("my name is " * 181, "name"),
    "153 phone numbers": ("555-201-7788 " * 153, "phone"),
    "1,999 ones": ("1" * 1999, "zip"),
    "1,999 dashes": ("-" * 1999, None),
    "330 ZIP codes": ("90210 " * 330, "zip"),
    "280 email addresses": ("a@b.co " * 280, "email"),
    "1,999 letters, no space": ("x" * 1999, "name"),
}
"""Messages of about 2,000 characters built to cost the most (a blind helper's attack took
0.8 s with the first): each parser reads a bounded number of candidates and a bounded clause,
so they stay linear."""


def per_call_us(call: Callable[[], object], number: int = 2000, repeat: int = 5) -> float:
    """The median of `repeat` timings, in microseconds per call."""
    runs = timeit.repeat(call, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def measure() -> dict[str, float]:
    """Microseconds per call: each library alone, then `extract` on each kind of message."""
    results = {
        "nameparser alone": per_call_us(lambda: HumanName("María de la Cruz")),
        "phonenumbers alone": per_call_us(
            lambda: list(
                phonenumbers.PhoneNumberMatcher(
                    "(555) 201-7788 ext. 20145", "US", leniency=phonenumbers.Leniency.POSSIBLE
                )
            )
        ),
        "email-validator alone": per_call_us(
            lambda: validate_email("jonas.weber@bücher.de", check_deliverability=False)
        ),
    }
    for kind, (text, expecting) in MESSAGES.items():
        results[f"extract: {kind}"] = per_call_us(
            lambda t=text, e=expecting: extract_contact(t, e),  # type: ignore[misc]
            number=500,
        )
    for kind, (text, expecting) in HOSTILE.items():
        results[f"hostile: {kind}"] = per_call_us(
            lambda t=text, e=expecting: extract_contact(t, e),  # type: ignore[misc]
            number=5,
            repeat=3,
        )
    return results


def main() -> None:
    for name, micros in measure().items():
        print(f"{name:<40} {micros:>8.1f} µs")


if __name__ == "__main__":
    main()
