"""Finds, validates and normalises contact details (name, phone, email, ZIP) in free text.

The parsing is the field's well-kept libraries' (measured in `bench/`): names by nameparser
(titles, suffixes, particles such as "de la" and "van der", any Unicode letters), phone numbers
by phonenumbers (US region: +1 and 1- prefixes, extensions kept apart), email addresses by
email-validator (syntax only, no DNS; internationalised domains and local parts). What stays
here is the conversation's own rules: which words cue a name, when a five-digit number is a ZIP
code, and that the last valid value of a field in a message wins (a correction).

Several details in one message are all taken. A detail that is present but invalid is reported
with the reason, so the conversation can ask again saying what was wrong.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from nameparser import HumanName

Field = Literal["name", "phone", "email", "zip"]

_NOT_NAME_WORDS = frozenset(
    [
        "actually",
        "really",
        "con",
        "sin",
        "pero",
        "porque",
        "aquí",
        "aqui",
        "why",
        "what",
        "who",
        "how",
        "where",
        "which",
        "can",
        "could",
        "would",
        "should",
        "will",
        "por",
        "qué",
        "que",
        "para",
        "cómo",
        "como",
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


# Email: the candidates are the words with an @; email-validator judges each.
_AT_WORD = re.compile(r"[^\s<>()\[\]{},;:\"]*@[^\s<>()\[\]{},;:\"]*")

# Phone: a digit run that phonenumbers did not take as a number, but looks like an attempt.
_DIGITS = re.compile(r"\+?\(?\d[\d\s().\-]*\d|\d")

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
    {"$", "usd", "case", "claim", "claims", "file", "docket", "policy", "ticket", "account",
     "acct", "invoice", "order", "ref", "reference", "number", "no", "no.", "#", "ext", "ext.",
     "extension", "x", "caso", "reclamo", "expediente", "número", "numero", "cuenta", "póliza",
     "poliza", "suite", "ste", "apt", "apartment", "unit", "room", "box", "po", "calle",
     "avenida", "highway", "hwy", "route", "i", "interstate", "exit", "mile", "since", "year",
     "in", "on", "de", "el", "del", "la"}
)  # fmt: skip
"""A word right before a number that makes it money, a case/claim/extension number, an
address part or a date, never a ZIP ("case number 48213", "ext. 20145", "$15000")."""
_STREET_SUFFIXES = frozenset(
    {"st", "street", "ave", "avenue", "rd", "road", "blvd", "boulevard", "ln", "lane", "dr",
     "drive", "way", "ct", "court", "pl", "place", "pkwy", "parkway", "hwy", "highway", "cir",
     "circle", "ter", "terrace"}
)  # fmt: skip
_AFTER_WORDS = frozenset(
    {"dollars", "dollar", "bucks", "usd", "k", "dólares", "dolares", "pesos", "miles", "mil",
     "calle", "avenida", "mi", "km", "days", "dias", "días", "years", "años", "anos", "months",
     "meses"}
)  # fmt: skip
_AFTER_CUES = _MONTHS | _STREET_SUFFIXES | _AFTER_WORDS
"""A word right after a number with the same effect ("15000 dollars", "12345 Main St")."""

# Names.
_NAME_CUES = re.compile(
    r"\b(?:(?:my\s+)?(?:full\s+)?name\s+is|(?:my\s+)?name['’]s|name\s*:|call\s+me|"
    r"i\s+am|i'm|i’m|im|this\s+is|it's|it’s|its|me\s+llamo|"
    r"mi\s+nombre(?:\s+completo)?\s+es|soy)\s+",
    re.IGNORECASE,
)
_WEAK_CUES = frozenset(
    {"i am", "i'm", "i’m", "im", "this is", "it's", "it’s", "its", "soy"}
)  # fmt: skip
"""Cues that also start ordinary sentences ("I'm worried", "it's about my son"): they name
someone only when the bot asked for a name or the next word is capitalised."""
_FILLERS = frozenset(
    {"yes", "yeah", "yep", "sure", "ok", "okay", "hi", "hello", "hey", "hola", "sí", "si",
     "claro", "bueno", "sorry", "perdón", "perdon", "oops", "no", "nope", "actually", "well",
     "so", "thanks", "gracias"}
)  # fmt: skip
_NAME_END = re.compile(
    r"[,;:!?\n()]|\s-\s|\d|\S+@\S+"
    r"|(?<!\bdr)(?<!\bmr)(?<!\bmrs)(?<!\bms)(?<!\bmx)(?<!\bsr)(?<!\bsra)(?<!\bsrta)(?<!\bjr)"
    r"(?<!\b[a-z])\.\s",
    re.IGNORECASE,
)
"""Where a name ends: punctuation, a digit, an email address, or a full stop that does not
close a title, a suffix or an initial ("Dr. John Smith", "James Smith Jr.", "Robert L. Hayes")."""
_NEGATION = re.compile(
    r"\b(?:not|instead\s+of|rather\s+than|no\s+es|en\s+vez\s+de|en\s+lugar\s+de)\b", re.IGNORECASE
)


def _negated(text: str, start: int) -> bool:
    """A value the visitor says is not theirs: a negation earlier in its clause ("my cell
    470-555-0146, not my work line 470-555-0100")."""
    return bool(_NEGATION.search(re.split(r"[,.;:!?]", text[:start])[-1]))


_NAME_PART = re.compile(r"[^\W\d_](?:[^\W\d_]|['’.\-])*")


def _find_email(text: str, invalid: dict[str, str]) -> tuple[str | None, str]:
    """The last valid address (normalised: domain lower-cased), and `text` without it."""
    found: str | None = None
    for match in _AT_WORD.finditer(text):
        if _negated(text, match.start()):
            continue
        candidate = match.group(0).strip(".!?'’")
        try:
            found = validate_email(candidate, check_deliverability=False).normalized
        except EmailNotValidError as error:
            invalid["email"] = f"that email address isn't valid ({str(error).rstrip('.')})"
    return found, _AT_WORD.sub(" ", text)


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


def _find_phone(text: str, invalid: dict[str, str], expecting: bool) -> tuple[str | None, str]:
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
        elif not _negated(text, match.start):
            found = national
    rest = "".join(
        text[end:start]
        for end, start in zip(
            [0] + [e for _, e in spans], [s for s, _ in spans] + [len(text)], strict=True
        )
    )
    if found is None and "phone" not in invalid:
        attempts = [re.sub(r"\D", "", m.group(0)) for m in _DIGITS.finditer(rest)]
        long_runs = [d for d in attempts if len(d) >= 7 and len(d) != 9]
        if long_runs or (expecting and attempts):
            invalid["phone"] = "a US phone number has 10 digits, including the area code"
    return found, rest


def _words_around(text: str, start: int, end: int) -> tuple[list[str], list[str]]:
    before = text[:start].lower().replace("$", " $ ").replace("#", " # ").split()
    after = text[end:].lower().split()
    return before[-3:], [w.strip(".,;:!?") for w in after[:3]]


def _cued_away(text: str, start: int, end: int) -> bool:
    """A money, case/claim/extension, street or date cue next to the number."""
    before, after = _words_around(text, start, end)
    if before and before[-1].strip(":") in _BEFORE_CUES:
        return True
    if (
        len(before) >= 2
        and before[-1] in ("is", "es", "was", "era", ":")
        and before[-2] in _BEFORE_CUES
    ):
        return True  # "case number is 48213", "ext is 20145"
    if after and after[0] in _AFTER_CUES:
        return True
    return len(after) >= 2 and after[1] in _STREET_SUFFIXES  # "12345 Main St"


def _find_zip(
    text: str, invalid: dict[str, str], *, expecting: bool, among_details: bool
) -> str | None:
    """A ZIP code when the bot asked for one, when the visitor labels it ("zip code 90210",
    "código postal 90210"), or when it stands alone among other contact details; never with a
    money, case/claim/extension, street or date cue next to it. The last one wins."""
    found: str | None = None
    for match in _ZIP.finditer(text):
        start, end = match.span()
        labelled = bool(_ZIP_LABEL.search(text[:start]))
        if match.group(1) == "00000" or (not labelled and _cued_away(text, start, end)):
            continue
        if (labelled or expecting or among_details) and not _negated(text, start):
            found = match.group(1)
    if found is None and (expecting or _ZIP_LABEL.search(text)):
        numbers = [m.group(0) for m in _NUMBER.finditer(text)]
        if any(re.sub(r"\D", "", n) != "00000" for n in numbers) or "00000" in text:
            invalid["zip"] = "a ZIP code has 5 digits (like 90210), or 9 as ZIP+4"
    return found


_PARTICLES = frozenset(
    {"de", "del", "la", "las", "los", "van", "von", "der", "den", "ten", "ter", "bin", "ibn",
     "bint", "da", "di", "du", "dos", "das", "le", "el", "al", "y", "e"}
)  # fmt: skip
"""Lower-case words inside a surname ("de la Cruz", "van der Berg", "bin Rashid")."""
_ABBREVIATIONS = frozenset(
    {"jr.", "sr.", "dr.", "mr.", "mrs.", "ms.", "mx.", "sra.", "srta.", "st."}
)  # fmt: skip


def _bare(word: str) -> str:
    bare = word.strip(",'’-")
    initial = len(bare) == 2 and bare[0].isalpha()  # "L." in "Robert L. Hayes"
    if bare.endswith(".") and bare.lower() not in _ABBREVIATIONS and not initial:
        bare = bare.rstrip(".")
    return bare


def _name_from(words: list[str]) -> tuple[str, str] | None:
    """(first, last) by nameparser: titles dropped, middle names, particles and suffixes kept
    with the last name ("José García López" -> José / García López); an all-lowercase or
    all-uppercase name capitalised ("maria de la cruz" -> Maria / de la Cruz)."""
    while words and _bare(words[0]).lower() in _FILLERS:
        words = words[1:]
    typed_in_one_case = " ".join(words).islower() or " ".join(words).isupper()
    kept: list[str] = []
    for word in words[:6]:
        bare = _bare(word)
        lowered = bare.lower()
        if kept and lowered in _PARTICLES:
            kept.append(bare)
            continue
        if not bare or not _NAME_PART.fullmatch(bare.rstrip(".")):
            break
        capitalised_later_word = kept and bare[:1].isupper() and not typed_in_one_case
        if lowered in _NOT_NAME_WORDS and not capitalised_later_word:
            break  # "Ann Lee and I was hurt"; but "Nguyen Van An" keeps its "An"
        kept.append(bare)
    while kept and kept[-1].lower() in _PARTICLES:
        kept.pop()
    if not kept:
        return None
    typed = " ".join(kept)
    name = HumanName(typed)
    if typed_in_one_case:
        name.capitalize(force=True)
    if not name.first:
        return None
    last = " ".join(part for part in (name.middle, name.last, name.suffix) if part)
    if len(name.first) > MAX_NAME_PART or len(last) > 2 * MAX_NAME_PART:
        return None
    return name.first, last


_FIRST_LABEL = re.compile(
    r"\b(?:first\s+name|given\s+name|primer\s+nombre)\s*(?:is|es|:)?\s+", re.IGNORECASE
)
_LAST_LABEL = re.compile(
    r"\b(?:last\s+name|surname|family\s+name|apellidos?)\s*(?:is|es|:)?"
    r"(?:\s+(?:spelled|written|actually|really|se\s+escribe|en\s+realidad))?\s+",
    re.IGNORECASE,
)


def _labelled_part(label: re.Pattern[str], text: str) -> str | None:
    found = None
    for match in label.finditer(text):
        words = _NAME_END.split(text[match.end() :], maxsplit=1)[0].split()
        placeholder = "x" if " ".join(words).islower() else "X"  # keeps the words' own case
        parsed = _name_from([placeholder, *words])  # parsed as the surname of a placeholder
        if parsed and parsed[1]:
            found = parsed[1]
    return found


_CORRECTION = re.compile(
    r"\b(?:sorry|typo|i\s+mean|i\s+meant|correction|actually|oops|perd[oó]n|"
    r"me\s+equivoqu[eé]|quise\s+decir|en\s+realidad|corrijo)\b",
    re.IGNORECASE,
)
"""Words that say the message corrects an earlier detail: a bare name in it counts."""
_LAST_COMMA_FIRST = re.compile(r"^\s*([^\W\d_][^,\d@]*?)\s*,\s*([^\W\d_][^,\d@]*?)\s*[.!]*\s*$")


def _bare_full_name(segments: list[list[str]]) -> tuple[str, str] | None:
    """The last segment that is nothing but a capitalised first and last name."""
    found = None
    for words in segments:
        if 2 <= len(words) <= 5 and all(w[:1].isupper() for w in words):
            parsed = _name_from(words)
            if parsed and parsed[1] and len(" ".join(parsed).split()) == len(words):
                found = parsed
    return found


def _last_comma_first(text: str) -> tuple[str, str] | None:
    """ "Reyes, Daniela": a surname, a comma, a given name (nameparser's own form)."""
    match = _LAST_COMMA_FIRST.match(text)
    if not match or _bare(match.group(1).split()[0]).lower() in _FILLERS:
        return None
    last, first = match.group(1).split(), match.group(2).split()
    if len(first) > 2 or not _name_from([*first, *last]):
        return None
    name = HumanName(f"{' '.join(last)}, {' '.join(first)}")
    if text.islower() or text.isupper():
        name.capitalize(force=True)
    surname = " ".join(part for part in (name.last, name.suffix) if part)
    return (name.first, surname) if name.first and surname else None


def _segments(text: str) -> list[list[str]]:
    return [words for words in (part.split() for part in _NAME_END.split(text)) if words]


def _find_name(text: str, expecting: bool, *, whole: bool = False) -> tuple[str, str | None] | None:
    """The last name given after a cue ("my name is", "call me", "me llamo", "soy") or labelled
    ("first name Ann, last name Lee", "mi apellido es Becerra": a surname alone, with an empty
    first name); when the bot asked for a name, the first words that are not fillers (or
    "Surname, Given"); and, with `whole` or in a correction ("sorry, typo - John Stephens"), a
    bare capitalised full name."""
    found: tuple[str, str | None] | None = None
    for cue in _NAME_CUES.finditer(text):
        words = _NAME_END.split(text[cue.end() :], maxsplit=1)[0].split()
        if not words:
            continue
        weak = " ".join(cue.group(0).lower().split()) in _WEAK_CUES
        if weak and not expecting and not words[0][:1].isupper():
            continue
        found = _name_from(words) or found
    first = _labelled_part(_FIRST_LABEL, text)
    last = _labelled_part(_LAST_LABEL, text)
    if first or last:
        return (first.split()[0] if first else "", last)
    if expecting and (found is None or not found[1]):
        found = _last_comma_first(text) or found
    if found is None and expecting:
        segments = [w for w in _segments(text) if any(_bare(x).lower() not in _FILLERS for x in w)]
        found = _name_from(segments[0]) if segments else None
    if (found is None or not found[1]) and (whole or _CORRECTION.search(text)):
        found = _bare_full_name(_segments(text)) or found
    return found


_WHAT: dict[Field, str] = {
    "name": "a name",
    "phone": "a phone number",
    "email": "an email address",
    "zip": "a ZIP code",
}


def extract(
    text: str, expecting: Field | None = None, *, bare_name: bool = False, bare_zip: bool = False
) -> Findings:
    """All details found in `text`; `expecting` is the field the bot just asked for. With
    `bare_name`, a message that is only a capitalised name counts as one (a visitor who answers
    "tell me more" with their name); with `bare_zip`, an unlabelled ZIP code counts (a correction
    during the read-back: "no, it's 90211")."""
    invalid: dict[str, str] = {}
    email, rest = _find_email(text, invalid)
    phone, rest = _find_phone(rest, invalid, expecting == "phone")
    name = _find_name(rest, expecting == "name", whole=bare_name)
    among_details = bool(email or phone or (name and name[1]))
    zip_code = _find_zip(
        rest, invalid, expecting=expecting == "zip", among_details=among_details or bare_zip
    )
    found = ContactDetails(
        first_name=(name[0] or None) if name else None,
        last_name=(name[1] or None) if name else None,
        phone=phone,
        email=email,
        zip=zip_code,
    )
    if expecting == "name" and name and not (name[0] and name[1]):
        invalid["name"] = "I need both your first and last name"
    elif expecting and not found.has(expecting) and expecting not in invalid:
        invalid[expecting] = f"I couldn't find {_WHAT[expecting]} in that"
    return Findings(found=found, invalid={k: v for k, v in invalid.items() if not found.has(k)})  # type: ignore[arg-type]


def merge(current: ContactDetails, new: ContactDetails) -> ContactDetails:
    """The last valid value of each detail wins (a visitor correcting it); missing ones keep
    the old. A first name alone does not replace a whole name; a surname alone replaces the
    surname ("mi apellido es Becerra")."""
    whole_name = bool(new.first_name and new.last_name)
    return ContactDetails(
        first_name=new.first_name if whole_name else (current.first_name or new.first_name),
        last_name=new.last_name or current.last_name,
        phone=new.phone or current.phone,
        email=new.email or current.email,
        zip=new.zip or current.zip,
    )
