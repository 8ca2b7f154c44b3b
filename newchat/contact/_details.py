"""What a conversation collects: the contact details, and what one message yielded."""

from __future__ import annotations

from typing import Literal

import msgspec

from newchat.contact._reasons import Reason

Field = Literal["name", "phone", "email", "zip"]


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
    invalid: dict[str, Reason]
    """Field -> why the value given for it could not be used."""
    first_name_labelled: bool = False
    """The visitor said which first name ("my first name is Anne"): it replaces the one held."""
    doubted_email: str | None = None
    """An address held back as a likely typo ("ann@gmial.com"), taken if the visitor sends it
    again."""


def merge(
    current: ContactDetails, new: ContactDetails, *, first_name_labelled: bool = False
) -> ContactDetails:
    """The last valid value of each detail wins (a visitor correcting it); missing ones keep
    the old. A first name alone replaces the one held only when the visitor labelled it ("my
    first name is Anne"), not in passing; a surname alone replaces the surname ("mi apellido es
    Becerra")."""
    replace_first = bool(new.first_name and (new.last_name or first_name_labelled))
    return ContactDetails(
        first_name=new.first_name if replace_first else (current.first_name or new.first_name),
        last_name=new.last_name or current.last_name,
        phone=new.phone or current.phone,
        email=new.email or current.email,
        zip=new.zip or current.zip,
    )
