"""ZIP codes: when a five-digit number is one (the conversation's own rule, not a library's)."""

from __future__ import annotations

import re

from newchat.contact._clauses import CLAUSE_REACH, clause_window, negated
from newchat.contact._reasons import Reason

# ZIP: 12345, 12345-6789 or 123456789 (USPS ZIP+4), standing as a word of its own.
_ZIP = re.compile(r"(?<![\w$#.,/-])(\d{5})(?:-?(\d{4}))?(?![\w%/]|[.,]\d|-\d)")
_NUMBER = re.compile(r"(?<![\w$#.,/-])\d+(?:-\d+)?(?![\w%/]|[.,]\d)")
_ZIP_LABEL = re.compile(
    r"(?:zip|zip\s*code|zipcode|postal\s+code|c[oó]digo\s+postal|c\.?p\.?)\b[^\d@]{0,20}$",
    re.IGNORECASE,
)
_MONTHS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
     "sept", "oct", "nov", "dec", "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio",
     "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
)  # fmt: skip
_BEFORE_CUES = _MONTHS | frozenset(
    {"$", "€", "usd", "eur", "report", "incident", "court", "case", "claim", "claims", "file",
     "docket", "policy", "ticket", "account",
     "acct", "invoice", "order", "ref", "reference", "number", "no", "no.", "#", "ext", "ext.",
     "extension", "x", "caso", "reclamo", "expediente", "número", "numero", "cuenta", "póliza",
     "poliza", "suite", "ste", "apt", "apartment", "unit", "room", "box", "po", "calle",
     "avenida", "highway", "hwy", "route", "i", "interstate", "exit", "mile", "since", "year",
       "de", "el", "del", "la"}
)  # fmt: skip
"""A word right before a number that makes it money, a case/claim/extension number, an
address part or a date, never a ZIP ("case number 48213", "ext. 20145", "$15000")."""
_STREET_SUFFIXES = frozenset(
    {"st", "street", "ave", "avenue", "rd", "road", "blvd", "boulevard", "ln", "lane", "dr",
     "drive", "way", "ct", "court", "pl", "place", "pkwy", "parkway", "hwy", "highway", "cir",
     "circle", "ter", "terrace"}
)  # fmt: skip
_AFTER_WORDS = frozenset(
    {"dollars", "dollar", "bucks", "usd", "k", "euros", "eur", "$", "€", "a", "dólares",
     "dolares", "pesos", "miles", "mil",
     "calle", "avenida", "mi", "km", "days", "dias", "días", "years", "años", "anos", "months",
     "meses"}
)  # fmt: skip
_AFTER_CUES = _MONTHS | _STREET_SUFFIXES | _AFTER_WORDS
"""A word right after a number with the same effect ("15000 dollars", "12345 Main St")."""


_SPACED_ZIP = re.compile(r"(?<![\d-])\d(?: ?\d){4}(?![ ]?\d)")
"""Five digits with single spaces among them: taken as one ZIP only at the ZIP step."""

MAX_CANDIDATES = 16
"""The last five-digit numbers in a message that are judged: 330 of them took 0.1 s."""
_ISSUED = ("00501", "99950")
"""The lowest and highest ZIP codes USPS has issued (Holtsville NY, Ketchikan AK): 00000 or
99999 is no one's ZIP."""


def _words_around(text: str, start: int, end: int) -> tuple[list[str], list[str]]:
    before = text[:start].lower().replace("$", " $ ").replace("#", " # ").split()
    after = text[end:].lower().split()
    return before[-3:], [w.strip(".,;:!?") for w in after[:3]]


def _cued_away(text: str, start: int, end: int, *, alone: bool) -> bool:
    """A money, case/claim/extension, street or date cue next to the number (an article only
    when the number does not stand `alone`)."""
    before, after = _words_around(text, start, end)
    if before and before[-1].strip(":") in _BEFORE_CUES:
        return not (alone and before[-1] in _ARTICLES)
    if (
        len(before) >= 2
        and before[-1] in ("is", "es", "was", "era", ":")
        and before[-2] in _BEFORE_CUES
    ):
        return True  # "case number is 48213", "ext is 20145"
    if after and after[0] in _AFTER_CUES:
        return True
    return len(after) >= 2 and after[1] in _STREET_SUFFIXES  # "12345 Main St"


_CLAUSE_END = re.compile(r"[,;:\n!?—–]|\s-\s|\.(?:\s|$)|\s(?:and|y|but|pero)\s", re.IGNORECASE)
_WHERE = re.compile(
    r"^\s*(?:(?:i'?m|i\s+am|i\s+live|we\s+live|we'?re|located|based|vivo|vivimos|estoy)\s+"
    r"(?:in|at|en)\s+|(?:i\s+live|we\s+live|vivo|vivimos)\s+(?:in|en)\s+(?:[^\W\d_]+\.?\s+){1,3}"
    r"|it'?s\s+|it’s\s+|it\s+is\s+|es\s+)?(?:el\s+|la\s+)?$",
    re.IGNORECASE,
)
_CITY = re.compile(r"^\s*(?:[A-ZÀ-Ý][^\W\d_]*\.?\s+){1,3}(?:[A-Z]{2}\.?\s+)?$")
"""What may stand before a ZIP in its own clause when nothing labels it: nothing, where the
visitor is ("I'm in 11368", "vivo en 78702", "vivo en el 78520", "es el 78520"), or the end of an
address ("Houston 77003", "Austin, TX 78701", "LA 90210")."""
_ARTICLES = frozenset({"el", "la"})
"""Before a number, these make it a date or an amount ("el 20145 de...", "la 15000") unless the
number stands alone: "es el 78520", "vivo en el 78520", "LA 90210"."""


def _stands_alone(text: str, start: int, end: int) -> bool:
    """The number is a clause of its own ("Ann Lee, 555-201-7788, 90210") or says where the
    visitor is ("I'm in 11368"), not a figure inside a sentence ("I have 12000 in bills")."""
    before = _CLAUSE_END.split(clause_window(text, start))[-1]
    after = _CLAUSE_END.split(text[end : end + CLAUSE_REACH], maxsplit=1)[0]
    place = _WHERE.match(before) or _CITY.match(before)
    return bool(place) and not after.strip(" .!")


def find_zip(
    text: str, invalid: dict[str, Reason], *, expecting: bool, among_details: bool
) -> str | None:
    """A ZIP code when the bot asked for one, when the visitor labels it ("zip code 90210",
    "código postal 90210"), or when it stands alone among other contact details (a clause of
    its own, or "I'm in 11368"); never with a money, case/claim/extension, street or date cue
    next to it, nor one the visitor negates. A labelled ZIP beats an unlabelled one, one standing
    alone beats one inside a sentence, and among equals the last wins."""
    if expecting:  # "9 4 1 1 0", "90 210": one ZIP typed with spaces
        text = _SPACED_ZIP.sub(lambda m: m.group(0).replace(" ", ""), text)
    best: tuple[int, str] | None = None  # (rank, zip): labelled 3, alone 2, asked-for 1
    cued: list[str] = []  # five digits an amount, case, extension, street or date cue took
    for match in list(_ZIP.finditer(text))[-MAX_CANDIDATES:]:
        start, end = match.span()
        labelled = bool(_ZIP_LABEL.search(text[:start]))
        if not _ISSUED[0] <= match.group(1) <= _ISSUED[1]:
            invalid["zip"] = Reason("{zip} isn't a ZIP code in use", zip=match.group(1))
            continue
        alone = _stands_alone(text, start, end)
        if not labelled and _cued_away(text, start, end, alone=alone):
            cued.append(match.group(1))
            continue
        if negated(text, start):
            continue
        rank = 3 if labelled else 2 if alone and (expecting or among_details) else int(expecting)
        if rank and (best is None or rank >= best[0]):
            best = (rank, match.group(1))
    found = best[1] if best else None
    if found is None and "zip" not in invalid and (expecting or _ZIP_LABEL.search(text)):
        numbers = [m.group(0) for m in _NUMBER.finditer(text)]
        if cued:
            invalid["zip"] = Reason(
                "{number} reads as an amount, a case number or part of a street address, not a "
                "ZIP code",
                number=cued[-1],
            )
        elif numbers:
            invalid["zip"] = Reason("a ZIP code has 5 digits (like 90210), or 9 as ZIP+4")
    return found
