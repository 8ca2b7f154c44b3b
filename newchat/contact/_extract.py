"""All contact details in one message, and what was wrong with the ones that could not be used."""

from __future__ import annotations

import re
import unicodedata

from newchat.contact._details import ContactDetails, Field, Findings
from newchat.contact._emails import find_email
from newchat.contact._names import find_name, names_a_first_name, renamed
from newchat.contact._phones import find_phone
from newchat.contact._reasons import Reason
from newchat.contact._zips import find_zip

NOT_FOUND: dict[Field, Reason] = {
    "name": Reason("I couldn't find a name in that"),
    "phone": Reason("I couldn't find a phone number in that"),
    "email": Reason("I couldn't find an email address in that"),
    "zip": Reason("I couldn't find a ZIP code in that"),
}


_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
"""Characters that show as nothing (zero-width spaces and joiners, direction marks and
embeddings, word joiners, the byte order mark, soft hyphens): pasted or typed on a phone, they
hid a name or an address from every parser."""
_ASCII_DIGITS = re.compile(r"(?![0-9])\d")
"""A digit of another script (full-width "９", Arabic-Indic "٩"): read as its ASCII digit."""


def extract(
    text: str,
    expecting: Field | None = None,
    *,
    bare_name: bool = False,
    any_case: bool = False,
    bare_zip: bool = False,
    weak_cues: bool = True,
    trusted_email: str | None = None,
    held_first: str | None = None,
) -> Findings:
    """All details found in `text`; `expecting` is the field the bot just asked for. With
    `bare_name`, a capitalised name standing alone counts ("no. Gustavo Mendoza" during the
    read-back), and with `any_case` too a whole message that is only a name in one case (a
    visitor who answers "tell me more" with "jorge alberto mendoza"); with `bare_zip`, an
    unlabelled ZIP code counts (a correction during the read-back: "no, it's 90211"). Without
    `weak_cues` (a name is already held), "I'm ..." or "it's ..." is never a name. An address
    held back as a likely typo ("ann@gmial.com") is taken when sent again as `trusted_email`.
    With `held_first` (the first name the conversation holds), a short message with a full name
    starting with it corrects the name at any step ("blanca estela rosales")."""
    text = unicodedata.normalize("NFC", text)  # "José" typed as J o s e + a combining accent
    text = _INVISIBLE.sub("", text)  # "john\u200b smith", "\u200fomar haddad\u200f"
    invalid: dict[str, Reason] = {}
    email, doubted_email, rest = find_email(text, invalid, trusted_email, expecting == "email")
    rest = _ASCII_DIGITS.sub(lambda m: str(unicodedata.digit(m.group(0))), rest)  # "９０２１０"
    phone, rest = find_phone(rest, invalid, expecting == "phone")
    name = find_name(
        rest,
        expecting == "name",
        whole=bare_name,
        any_case=any_case,
        weak_cues=weak_cues,
        invalid=invalid,
    )
    if held_first and expecting != "name" and not (name and name[0] and name[1]):
        name = renamed(rest, held_first) or name  # "blanca estela rosales" at the phone step
    among_details = bool(email or phone or (name and name[1]))
    zip_code = find_zip(
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
        invalid["name"] = (
            Reason("I also need your first name")
            if name[1]
            else Reason("I need your last name too")
        )
    elif expecting and not found.has(expecting) and expecting not in invalid:
        invalid[expecting] = NOT_FOUND[expecting]
    usable = {k: v for k, v in invalid.items() if not found.has(k)}  # type: ignore[arg-type]
    return Findings(
        found, usable, first_name_labelled=names_a_first_name(rest), doubted_email=doubted_email
    )
