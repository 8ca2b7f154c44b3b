"""US phone numbers, found by phonenumbers (US region: +1 and 1- prefixes, extensions kept
apart) and held to the North American Numbering Plan's structure."""

from __future__ import annotations

import re

import phonenumbers

from newchat.contact._clauses import negated

_ZIP_PLUS_FOUR = re.compile(r"\d{5}-?\d{4}")

# Phone: a digit run that phonenumbers did not take as a number, but looks like an attempt.
_DIGITS = re.compile(r"\+?\(?\d[\d\s().\-]*\d|\d")


def _nanp_problem(number: str) -> str | None:
    """Why ten digits are not a NANP number, or None (the North American Numbering Plan:
    area code and exchange start with 2-9, and an area code is not an N11 service code)."""
    area, exchange = number[:3], number[3:6]
    if area[0] in "01":
        return "a US area code can't start with 0 or 1"
    if area[1:] == "11":
        return f"{area} is a service code, not an area code"
    if exchange[0] in "01":
        return "the 7-digit part of a US number can't start with 0 or 1"
    return None


def find_phone(text: str, invalid: dict[str, str], expecting: bool) -> tuple[str | None, str]:
    """The last valid US number (ten digits, extension dropped), and `text` without every
    number phonenumbers found (extensions included, so they are never read as a ZIP)."""
    found: str | None = None
    spans: list[tuple[int, int]] = []
    matches = phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE)
    for match in matches:
        spans.append((match.start, match.end))
        number = match.number
        national = f"{number.national_number:d}"
        if number.country_code != 1:
            invalid["phone"] = "I can only take a US phone number"
        elif len(national) != 10:
            invalid["phone"] = "a US phone number has 10 digits, including the area code"
        elif problem := _nanp_problem(national):
            invalid["phone"] = problem
        elif not negated(text, match.start):
            found = national
    rest = "".join(
        text[end:start]
        for end, start in zip(
            [0] + [e for _, e in spans], [s for s, _ in spans] + [len(text)], strict=True
        )
    )
    if found is None and "phone" not in invalid:
        runs = [m.group(0).strip() for m in _DIGITS.finditer(rest)]
        attempts = [re.sub(r"\D", "", run) for run in runs]
        long_runs = [  # 7+ digits, but not a ZIP+4 (12345-6789, 123456789)
            d for run, d in zip(runs, attempts, strict=True)
            if len(d) >= 7 and not _ZIP_PLUS_FOUR.fullmatch(run)
        ]  # fmt: skip
        if long_runs or (expecting and attempts):
            invalid["phone"] = "a US phone number has 10 digits, including the area code"
    return found, rest
