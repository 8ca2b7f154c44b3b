"""Email addresses, judged by email-validator (syntax only, no DNS; internationalised domains
and local parts), with a domain that ends in a real public suffix (publicsuffixlist's bundled
list) and is not one letter off a mailbox provider most visitors use."""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import cache

from email_validator import EmailNotValidError, validate_email
from publicsuffixlist import PublicSuffixList

from newchat.contact._clauses import negated
from newchat.contact._reasons import Reason

# Email: the candidates are the words with an @; email-validator judges each.
_AT_WORD = re.compile(r"[^\s<>()\[\]{},;:\"]*@[^\s<>()\[\]{},;:\"]*")

COMMON_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "hotmail.com", "outlook.com",
    "live.com", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "mail.com",
    "email.com", "gmx.com", "protonmail.com", "proton.me", "comcast.net", "att.net",
    "sbcglobal.net", "verizon.net", "bellsouth.net", "cox.net", "charter.net", "yahoo.es",
    "hotmail.es", "outlook.es", "yahoo.com.mx", "hotmail.com.mx",
)  # fmt: skip
"""Mailbox providers most US and Spanish-speaking visitors use: a domain close to one of these
but not it ("gmial.com", "yahooo.com", "gmail.co") is most likely a typo."""
TYPO_SIMILARITY = 0.85
"""difflib's ratio above which a domain counts as a typo of a common one: "gmial.com",
"gmai.com", "hotmial.com" and "aol.co" are over it; "law.com", "cox.net" and "mail.ru" are not
(tests/unit/newchat/test_contact_capture.py)."""


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the bundled list: no network


MAX_CANDIDATES = 8
"""The last addresses in a message that are judged (the last valid one wins): judging each of
280 took 0.2 s."""
DOCUMENTATION_SUFFIX = "example"
"""RFC 2606 section 2 reserves ".example" for documentation; email-validator lets it through
(it refuses the other special-use names), and so does this check, so documented addresses work."""


def _unknown_ending(domain: str) -> str | None:
    """The ending of a syntactically valid domain that no mail can go to ("con"), or None."""
    ending = domain.rsplit(".", 1)[-1]
    if ending == DOCUMENTATION_SUFFIX:
        return None
    if _suffixes().publicsuffix(domain, accept_unknown=False) is None:
        return ending
    return None


def likely_typo(domain: str) -> str | None:
    """The common domain `domain` is one slip away from ("gmial.com" -> "gmail.com"), or None."""
    if domain in COMMON_DOMAINS:
        return None
    close = difflib.get_close_matches(domain, COMMON_DOMAINS, n=1, cutoff=TYPO_SIMILARITY)
    return close[0] if close else None


_SPLIT_ADDRESS = re.compile(r"^\s*([a-z0-9][\w.+-]*)\s+([\w.+-]+@\S+?)[.!]?\s*$")
"""An answer to "your email?" that is a word and an address: "ann lee@example.com"."""
_LEAD_INS = frozenset(
    {"is", "es", "email", "e-mail", "mail", "correo", "at", "to", "its", "it's", "sorry", "oops",
     "ok", "okay", "yes", "no", "actually", "correction", "typo", "perdón", "perdon", "sí", "si",
     "it", "my", "mi", "here", "aquí", "aqui", "new", "correct", "fixed", "try", "again", "the",
     "el", "please", "thanks", "gracias", "use", "send", "nuevo", "nueva"}
)  # fmt: skip
"""Words that lead into an address rather than begin it ("sorry heather@example.com")."""
_SCRIPTS = re.compile(r"(LATIN|CYRILLIC|GREEK|ARMENIAN|CHEROKEE) ")


def _mixes_alphabets(address: str) -> bool:
    """Letters from two alphabets that look alike ("аnn" with a Cyrillic а): a lookalike of
    the address the visitor meant, which mail would never reach."""
    scripts = {
        m.group(1)
        for c in address
        if c.isalpha() and (m := _SCRIPTS.match(unicodedata.name(c, "")))
    }
    return len(scripts) > 1


_SPACED_AT = re.compile(r"(?<=[\w.+-])(?:\s+@\s*|\s*@\s+)(?=[\w-]+\.[\w.-]*[^\W_])")
"""Spaces around the @ ("ann @ gmail.com"): one address, typed loosely (`_joined`). Anchored on
the @ itself, so a long run of letters without one costs one pass."""


def _joined(text: str) -> str:
    """`text` with each address's halves joined, unless the word before the @ leads into it
    ("mi correo es @gmail.com" is an address with nothing before the @)."""
    if "@" not in text:
        return text
    parts: list[str] = []
    last = 0
    for match in _SPACED_AT.finditer(text):
        before = text[max(last, match.start() - 64) : match.start()].split()
        if before and before[-1].lower() not in _LEAD_INS:
            parts += [text[last : match.start()], "@"]
            last = match.end()
    return "".join([*parts, text[last:]])


_SPOKEN_AT = frozenset({"at", "arroba"})
_SPOKEN_SIGNS = {"dot": ".", "punto": ".", "underscore": "_", "dash": "-", "hyphen": "-",
                 "guion": "-", "guión": "-"}  # fmt: skip
_SPOKEN_WORD = re.compile(r"[a-z0-9][a-z0-9+-]*")


def _spelled_out(text: str) -> str:
    """`text` with an address spelled out in words written as one ("ann at gmail dot com",
    "maria punto gomez arroba gmail punto com"): the word before "at"/"arroba" and any joined to
    it by "dot"/"punto"/"dash", then the domain's words joined by "dot"/"punto". Only at the
    email step, where "at" cannot be the preposition of a story."""
    words = text.split()
    lowered = [w.lower().strip(".,;!?") for w in words]
    ats = [
        i
        for i, w in enumerate(lowered)
        if w in _SPOKEN_AT and 0 < i < len(lowered) - 3 and lowered[i + 2] in ("dot", "punto")
    ]
    if not ats:
        return text
    at = ats[-1]
    end = at + 2
    while end + 1 < len(lowered) and lowered[end] in ("dot", "punto"):
        end += 2  # gmail dot com dot mx
    start = at - 1
    while start >= 2 and lowered[start - 1] in _SPOKEN_SIGNS:
        start -= 2  # maria punto gomez
    parts = lowered[start:end]
    if not all(_SPOKEN_WORD.fullmatch(w) for w in parts[0::2]):
        return text
    address = "".join(_SPOKEN_SIGNS.get(w, "@" if w in _SPOKEN_AT else w) for w in parts)
    return " ".join([*words[:start], address, *words[end:]])


_WHY: tuple[tuple[str, Reason], ...] = (
    (
        "something before the @",
        Reason("an email address needs a name before the @, like ann@example.com"),
    ),
    (
        "something after the @",
        Reason("an email address needs a domain after the @, like gmail.com"),
    ),
    (
        "should have a period",
        Reason("the part after the @ needs a dot and an ending, like gmail.com"),
    ),
    ("invalid characters: '@'", Reason("an email address has exactly one @")),
    ("periods in a row", Reason("an email address can't have two dots in a row")),
    ("start with a period", Reason("an email address can't start or end with a dot")),
    ("end with a period", Reason("an email address can't start or end with a dot")),
    (
        "period immediately before the @",
        Reason("an email address can't have a dot right before the @"),
    ),
    ("hyphen", Reason("the part after the @ can't start or end with a hyphen")),
)
"""email-validator's reasons (its messages are English only), said in the visitor's language."""
_NOT_VALID = Reason("that email address isn't valid; please check it for a typo")


def _why(error: EmailNotValidError) -> Reason:
    message = str(error)
    return next((reason for cue, reason in _WHY if cue in message), _NOT_VALID)


def _without_addresses(text: str) -> str:
    return _AT_WORD.sub(" , ", text) if "@" in text else text  # the pattern rescans @-less runs


def find_email(
    text: str, invalid: dict[str, Reason], trusted: str | None = None, expecting: bool = False
) -> tuple[str | None, str | None, str]:
    """(the last valid address, normalised: domain lower-cased; an address held back as a
    likely typo of a common domain; `text` without the addresses). An address the visitor
    sends again after the typo warning (`trusted`) is taken as it is. At the email step, a
    word and an address alone ("ann lee@example.com") are asked about, never cut to the
    address."""
    found: str | None = None
    doubted: str | None = None
    text = _joined(text)
    if expecting:
        text = _spelled_out(text)
    split = _SPLIT_ADDRESS.match(text) if expecting else None
    if split and split.group(1) not in _LEAD_INS:
        joined = split.group(1) + split.group(2)
        invalid["email"] = Reason(
            "Did you mean {joined}? An email address has no spaces.", joined=joined
        )
        return None, None, _without_addresses(text)
    for match in list(_AT_WORD.finditer(text))[-MAX_CANDIDATES:] if "@" in text else ():
        if negated(text, match.start()):
            continue
        candidate = match.group(0).lstrip("'’").rstrip(".!?'’")  # a leading dot is the address's
        try:
            address = validate_email(candidate, check_deliverability=False)
        except EmailNotValidError as error:
            invalid["email"] = _why(error)
            continue
        if _mixes_alphabets(address.normalized):
            invalid["email"] = Reason("that email address mixes letters from different alphabets")
        elif ending := _unknown_ending(address.ascii_domain):
            invalid["email"] = Reason(
                'that email address isn\'t valid (".{ending}" is not an email domain ending)',
                ending=ending,
            )
        elif (typo := likely_typo(address.domain)) and address.normalized != trusted:
            invalid["email"] = Reason(
                "Did you mean {suggestion}? If {address} is right, just send it again.",
                suggestion=f"{address.local_part}@{typo}",
                address=address.normalized,
            )
            doubted = address.normalized
        else:
            found = address.normalized
    return found, doubted, _without_addresses(text)
