"""Finds, validates and normalises contact details (name, phone, email, ZIP) in free text.

Several details in one message are all taken. A detail that is present but invalid is reported
so the conversation can ask again politely, naming what was wrong.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

Field = Literal["name", "phone", "email", "zip"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
_AT_WORD = re.compile(r"\S+@\S*")
_PHONE = re.compile(
    r"(?<![\d])(?:\+?1[\s.\-]?)?\(?(\d{3})\)?[\s.\-]?(\d{3})[\s.\-]?(\d{4})(?![\d])"
)
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\-]{5,}\d")
_ZIP = re.compile(r"(?<![\d\-])(\d{5})(?:-(\d{4}))?(?![\d])")
_SHORT_NUMBER = re.compile(r"(?<![\d])\d{3,9}(?![\d])")
_NAME_WORD = r"[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'’.\-]*"
_NAME_CUE = re.compile(
    r"(?:my name is|my name's|name is|name:|i am|i'm|im|this is|it's|me llamo|mi nombre es|soy)"
    rf"\s+({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}})",
    re.IGNORECASE,
)
_NOT_NAME_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "i",
        "im",
        "i'm",
        "me",
        "my",
        "mine",
        "you",
        "your",
        "we",
        "our",
        "he",
        "she",
        "they",
        "it",
        "is",
        "am",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "not",
        "no",
        "yes",
        "ok",
        "okay",
        "hi",
        "hello",
        "hey",
        "hola",
        "here",
        "there",
        "this",
        "that",
        "looking",
        "calling",
        "writing",
        "trying",
        "hurt",
        "injured",
        "fine",
        "good",
        "sorry",
        "sure",
        "thanks",
        "thank",
        "please",
        "just",
        "still",
        "also",
        "so",
        "very",
        "really",
        "in",
        "on",
        "at",
        "of",
        "for",
        "to",
        "from",
        "with",
        "about",
        "after",
        "before",
        "because",
        "if",
        "when",
        "married",
        "divorced",
        "pregnant",
        "arrested",
        "fired",
        "disabled",
        "scared",
        "worried",
        "afraid",
        "interested",
        "available",
        "sick",
        "going",
        "getting",
        "being",
        "single",
        "retired",
        "unemployed",
        "over",
        "under",
        "age",
        "years",
        "old",
        "lawyer",
        "attorney",
        "help",
        "need",
        "want",
        "call",
        "email",
        "phone",
        "number",
        "zip",
        "code",
        "se",
        "de",
        "del",
        "la",
        "el",
        "los",
        "las",
        "y",
        "mi",
        "tengo",
        "necesito",
        "muy",
        "bien",
        "gracias",
    ]
)

MAX_NAME_PART = 40


class ContactDetails(msgspec.Struct, omit_defaults=True):
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    """Ten digits, US (NANP) numbering, no country code or punctuation."""
    email: str | None = None
    zip: str | None = None
    """Five digits (a ZIP+4 suffix is dropped)."""

    def has(self, field: Field) -> bool:
        if field == "name":
            return bool(self.first_name and self.last_name)
        value: str | None = getattr(self, field)
        return bool(value)


class Findings(msgspec.Struct):
    found: ContactDetails
    invalid: dict[str, str]
    """Field -> why the value given for it could not be used."""


def _valid_nanp(area: str, exchange: str) -> bool:
    return area[0] not in "01" and exchange[0] not in "01" and area[1:] != "11"


def _find_email(text: str, invalid: dict[str, str]) -> str | None:
    match = _EMAIL.search(text)
    if match:
        local, _, domain = match.group(0).partition("@")
        return f"{local}@{domain.lower()}"
    if _AT_WORD.search(text):
        invalid["email"] = "that email address looks incomplete"
    return None


def _find_phone(text: str, invalid: dict[str, str]) -> str | None:
    for match in _PHONE.finditer(text):
        area, exchange, line = match.groups()
        if _valid_nanp(area, exchange):
            return area + exchange + line
        invalid["phone"] = "that doesn't look like a valid US phone number"
    if "phone" not in invalid and _DIGIT_RUN.search(text):
        digits = re.sub(r"\D", "", _DIGIT_RUN.search(text).group(0))  # type: ignore[union-attr]
        if len(digits) >= 7 and len(digits) != 9:
            invalid["phone"] = "a US phone number has 10 digits, including the area code"
    return None


def _find_zip(text: str, invalid: dict[str, str], expecting: bool) -> str | None:
    for match in _ZIP.finditer(text):
        if match.group(1) != "00000":
            return match.group(1)
    if expecting and _SHORT_NUMBER.search(text):
        invalid["zip"] = "a ZIP code has 5 digits"
    return None


def _clean_name(words: list[str]) -> tuple[str, str] | None:
    kept: list[str] = []
    for word in words:
        bare = word.strip(".'’-")
        if not bare or bare.lower() in _NOT_NAME_WORDS or len(bare) > MAX_NAME_PART:
            break
        kept.append(bare if any(c.isupper() for c in bare[1:]) else bare.capitalize())
    if not kept:
        return None
    first, last = kept[0], " ".join(kept[1:])
    return first, last


def _find_name(text: str, expecting: bool) -> tuple[str, str] | None:
    for match in _NAME_CUE.finditer(text):
        words = match.group(1).split()
        cue_is_weak = match.group(0).lower().startswith(("i am", "i'm", "im", "this is", "it's"))
        if cue_is_weak and not expecting and not words[0][0].isupper():
            continue
        cleaned = _clean_name(words)
        if cleaned:
            return cleaned
    if expecting:
        candidate = re.split(r"[,;\n]|\d|\S+@\S+", text, maxsplit=1)[0]
        words = candidate.split()
        if 1 <= len(words) <= 4 and all(re.fullmatch(_NAME_WORD, w) for w in words):
            return _clean_name(words)
    return None


def extract(text: str, expecting: Field | None = None) -> Findings:
    """All details found in `text`; `expecting` is the field the bot just asked for."""
    invalid: dict[str, str] = {}
    email = _find_email(text, invalid)
    without_email = _EMAIL.sub(" ", text)
    phone = _find_phone(without_email, invalid)
    without_phone = _PHONE.sub(" ", without_email)
    zip_code = _find_zip(without_phone, invalid, expecting == "zip")
    name = _find_name(without_phone, expecting == "name")
    found = ContactDetails(
        first_name=name[0] if name else None,
        last_name=(name[1] or None) if name else None,
        phone=phone,
        email=email,
        zip=zip_code,
    )
    if expecting == "name" and name and not name[1]:
        invalid["name"] = "I need both your first and last name"
    return Findings(found=found, invalid={k: v for k, v in invalid.items() if not found.has(k)})  # type: ignore[arg-type]


def merge(current: ContactDetails, new: ContactDetails) -> ContactDetails:
    """Newer valid values win (a visitor correcting a detail), missing ones keep the old."""
    return ContactDetails(
        first_name=new.first_name if new.last_name else (current.first_name or new.first_name),
        last_name=new.last_name or current.last_name,
        phone=new.phone or current.phone,
        email=new.email or current.email,
        zip=new.zip or current.zip,
    )
