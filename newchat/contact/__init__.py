"""Finds, validates and normalises contact details (name, phone, email, ZIP) in free text.

The parsing is the field's well-kept libraries' (measured in `bench/contact.py`): names by nameparser
(titles, suffixes, particles such as "de la" and "van der", any Unicode letters), phone numbers
by phonenumbers (US region: +1 and 1- prefixes, extensions kept apart), email addresses by
email-validator (syntax only, no DNS; internationalised domains and local parts). What stays
here is the conversation's own rules: which words cue a name, when a five-digit number is a ZIP
code, and that the last valid value of a field in a message wins (a correction).

Several details in one message are all taken. A detail that is present but invalid is reported
with the reason, so the conversation can ask again saying what was wrong.
"""

from newchat.contact._details import ContactDetails, Field, Findings, merge
from newchat.contact._extract import NOT_FOUND, extract
from newchat.contact._reasons import Reason

__all__ = ["NOT_FOUND", "ContactDetails", "Field", "Findings", "Reason", "extract", "merge"]
