"""US phone numbers, found by phonenumbers (US region: +1 and 1- prefixes, extensions kept
apart) and held to the North American Numbering Plan's structure."""

from __future__ import annotations

import itertools
import re

import phonenumbers

from newchat.contact._clauses import (
    CLAUSE_REACH,
    CORRECTION,
    labelled_as_another_number,
    negated,
)
from newchat.contact._reasons import Reason

MAX_CANDIDATES = 12
"""Numbers read in one message: a visitor gives one or two (a cell and a work line, a
correction); 153 of them took 0.3 s."""
_ZIP_PLUS_FOUR = re.compile(r"\d{5}-?\d{4}")

# Phone: a digit run that phonenumbers did not take as a number, but looks like an attempt.
_DIGITS = re.compile(r"\+?\(?\d[\d\s().\-]*\d|\d")


def _nanp_problem(number: str) -> Reason | None:
    """Why ten digits are not a NANP number, or None (the North American Numbering Plan:
    area code and exchange start with 2-9, and an area code is not an N11 service code)."""
    area, exchange = number[:3], number[3:6]
    if area[0] in "01":
        return Reason("a US area code can't start with 0 or 1")
    if area[1:] == "11":
        return Reason("{area} is a service code, not an area code", area=area)
    if exchange[0] in "01":
        return Reason("the 7-digit part of a US number can't start with 0 or 1")
    return None


_VANITY = re.compile(
    r"(?<![\w+])(?:\+?1[-.\s]?)?\(?\d{3}\)?[-.\s]?(?=(?:[\dA-Z]-?){7}(?![\w-]))"
    r"(?=[\d-]*[A-Z])(?:[\dA-Z]-?){6}[\dA-Z]"
)
"""A number spelled partly in capitals ("1-800-FLOWERS", "212-MY-LAWYER"'s first seven): an
area code in digits, then seven keypad characters. Lower-case words are never read as digits
("the 405 freeway")."""
_DIALLED_ABROAD = re.compile(r"(?<![\w+])(?<!\d[\s.(-])00(?=[\s.-]?[1-9])")
""""00", the international call prefix of most countries ("001 212 555 0100" from Europe);
the US's own "011" phonenumbers reads by itself. Only where a number starts, never inside one
("200-200-0010", "200 200 0010")."""
_NOT_PERSONAL = {
    phonenumbers.PhoneNumberType.TOLL_FREE: Reason(
        "that is a toll-free number; I need one that reaches you directly"
    ),
    phonenumbers.PhoneNumberType.PREMIUM_RATE: Reason(
        "that is a premium-rate number; I need one that reaches you directly"
    ),
}
_TEN_DIGITS = Reason("a US phone number has 10 digits, including the area code")
SOMEONE_ELSES = Reason(
    "that number is someone else's; I need yours, the one our attorney should call"
)
"""Number types that reach a business or a paid service, never a visitor (phonenumbers'
metadata: 800, 833, 844, 855, 866, 877, 888 and 900)."""


_LOOKALIKE = re.compile(r"(?<=[\d-])[OoIl](?=[\d-]*\d)(?<=\d[OoIl]|-[OoIl])|(?<=\d)[OoIl](?=\d)")
"""An O typed for a zero or an l or I for a one among digits ("213-555-O147"): a slip of the
keyboard, not a keypad letter (a vanity number's letters are words: "1-800-FLOWERS")."""


_DIGITS_ON_LINES = re.compile(r"(?<=\d)\n(?=[ \t]*\(?\d)")
"""A number typed over several lines ("210\n845\n3399"): one number."""


def _as_dialled(text: str, expecting: bool) -> str:
    """`text` with "00" read as "+", a letter O, l or I among digits read as 0 or 1, digit
    groups on separate lines read as one line, and, when
    the bot asked for a phone, letters in a number turned into their keypad digits (E.161, by
    phonenumbers), keeping every character's position. Elsewhere capitals stay words ("405
    FREEWAY CRASH")."""
    text = _LOOKALIKE.sub(lambda m: "0" if m.group(0) in "Oo" else "1", text)
    text = _DIGITS_ON_LINES.sub(" ", text)
    if expecting:
        text = _VANITY.sub(
            lambda m: phonenumbers.convert_alpha_characters_in_number(m.group(0)), text
        )
    return _DIALLED_ABROAD.sub(" +", text)


_PREFERRED = re.compile(
    r"\b(?:better|best|prefer|preferably|rather|mejor|prefiero|preferiblemente|mejor\s+ll[aá]m)",
    re.IGNORECASE,
)
"""Words that make the number after them the one to call ("787 555 2190 pero mejor llámame al
787 641 2190", "it's better to call my cell ...")."""
_OWN_LINE = re.compile(r"\b(?:cell|cellphone|mobile|celular|cel|personal|home|casa)\b", re.I)
_WORK_LINE = re.compile(r"\b(?:work|office|business|trabajo|oficina)\b", re.IGNORECASE)


def _chosen(text: str, candidates: list[tuple[str, int, int]]) -> str | None:
    """Of several numbers in one message, the one a person would call: the last one after a
    correction ("555-0134, sorry, 555-0135"); else the first after "better" or "mejor"; else
    one called a cell or home line over one
    called a work line; else the first ("reach me at A or B")."""
    if not candidates:
        return None
    corrections = [m.end() for m in CORRECTION.finditer(text)]
    if corrections and any(start > corrections[-1] for _, start, _ in candidates):
        return [n for n, start, _ in candidates if start > corrections[-1]][-1]
    preferred = [m.end() for m in _PREFERRED.finditer(text)]
    if preferred and any(start > preferred[-1] for _, start, _ in candidates):
        return next(n for n, start, _ in candidates if start > preferred[-1])
    ends = [0] + [end for _, _, end in candidates]
    clauses = [
        (n, _label_of(text, previous_end, start, end))
        for (n, start, end), previous_end in zip(candidates, ends, strict=False)
    ]
    own = [n for n, clause in clauses if _OWN_LINE.search(clause)]
    not_work = [n for n, clause in clauses if not _WORK_LINE.search(clause)]
    return (own or not_work or [candidates[0][0]])[0]


def _label_of(text: str, previous_end: int, start: int, end: int) -> str:
    """The words that label a number: before it back to the previous number or the nearest
    comma ("work: 213-555-0100 cell: 213-555-0147"), and after it up to the next digit or
    comma ("212.555.0199 (cell)")."""
    before = _LINE_END.split(text[max(previous_end, start - CLAUSE_REACH) : start])[-1]
    after = _AFTER_END.split(text[end : end + CLAUSE_REACH], maxsplit=1)[0]
    return before + ("" if ":" in after else after)  # "cell:" labels the number after it


_LINE_END = re.compile(r"[,;]|\b(?:or|o|but|pero|and|y)\b", re.IGNORECASE)
_AFTER_END = re.compile(r"\d|[,;]|\b(?:or|o|but|pero|and|y)\b", re.IGNORECASE)


def find_phone(text: str, invalid: dict[str, Reason], expecting: bool) -> tuple[str | None, str]:
    """The visitor's US number (ten digits, extension dropped: `_chosen`), and `text` without
    every number phonenumbers found (extensions included, so they are never read as a ZIP).
    A number its clause calls a claim, policy or case number, or someone else's, is never
    theirs. At the phone step, letters in a number ("1-800-FLOWERS") are keypad digits; a
    toll-free or premium-rate number is refused with its kind."""
    candidates: list[tuple[str, int, int]] = []
    theirs = False
    spans: list[tuple[int, int]] = []
    dialled = _as_dialled(text, expecting)
    matches = phonenumbers.PhoneNumberMatcher(
        dialled, "US", leniency=phonenumbers.Leniency.POSSIBLE
    )
    for match in itertools.islice(matches, MAX_CANDIDATES):
        spans.append((match.start, match.end))
        if labelled_as_another_number(text, match.start):
            continue  # "claim number 917..."
        if negated(text, match.start):
            theirs = True  # "the other driver's number is ...", "he's Bob Lee 213-..."
            continue
        number = match.number
        national = f"{number.national_number:d}"
        kind = _NOT_PERSONAL.get(phonenumbers.number_type(number))
        if number.country_code != 1:
            invalid["phone"] = Reason("I can only take a US phone number")
        elif len(national) != 10:
            invalid["phone"] = _TEN_DIGITS
        elif problem := _nanp_problem(national):
            invalid["phone"] = problem
        elif kind:
            invalid["phone"] = kind
        else:
            candidates.append((national, match.start, match.end))
    found = _chosen(text, candidates)
    rest = " , ".join(  # a separator where a number was: "602 418 8891 85004" is two values
        text[end:start]
        for end, start in zip(
            [0] + [e for _, e in spans], [s for s, _ in spans] + [len(text)], strict=True
        )
    )
    if found is None and theirs and expecting and "phone" not in invalid:
        invalid["phone"] = SOMEONE_ELSES
    if found is None and "phone" not in invalid:
        runs = [m.group(0).strip() for m in _DIGITS.finditer(rest)]
        attempts = [re.sub(r"\D", "", run) for run in runs]
        long_runs = [  # 7+ digits, but not a ZIP+4 (12345-6789, 123456789)
            d for run, d in zip(runs, attempts, strict=True)
            if len(d) >= 7 and not _ZIP_PLUS_FOUR.fullmatch(run)
        ]  # fmt: skip
        if long_runs or (expecting and attempts):
            invalid["phone"] = _TEN_DIGITS
    return found, rest
