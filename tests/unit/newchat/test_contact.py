from __future__ import annotations

import pytest

from newchat import ContactDetails
from newchat import extract_contact as extract
from newchat import merge_contact as merge


def test_several_details_in_one_message_are_all_taken() -> None:
    found = extract("I'm Ann Lee, 555-201-7788, ann@example.com, 90210").found
    assert found == ContactDetails("Ann", "Lee", "5552017788", "ann@example.com", "90210")


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("(312) 555-0199", "3125550199"),
        ("312.555.0199", "3125550199"),
        ("+1 312 555 0199", "3125550199"),
        ("call me at 1-312-555-1234", "3125551234"),
        ("3125550199", "3125550199"),
    ],
)
def test_phone_numbers_are_normalised_to_ten_digits(text: str, phone: str) -> None:
    assert extract(text, "phone").found.phone == phone


@pytest.mark.parametrize("text", ["123-456-7890", "555-1234567890123", "911-555-0100", "555 0199"])
def test_invalid_phone_numbers_are_flagged_not_stored(text: str) -> None:
    findings = extract(text, "phone")
    assert findings.found.phone is None
    assert "phone" in findings.invalid


def test_email_domain_is_lower_cased_and_incomplete_email_flagged() -> None:
    assert extract("Ann.Lee+x@Example.COM", "email").found.email == "Ann.Lee+x@example.com"
    findings = extract("ann@", "email")
    assert findings.found.email is None
    assert "email" in findings.invalid


def test_zip_plus_four_keeps_five_digits_and_short_zip_is_flagged() -> None:
    assert extract("60614-1234", "zip").found.zip == "60614"
    assert "zip" in extract("9021", "zip").invalid
    assert extract("00000", "zip").found.zip is None


def test_zip_is_not_taken_from_inside_a_phone_number() -> None:
    found = extract("my number is 312 555 0199").found
    assert found.phone == "3125550199"
    assert found.zip is None


@pytest.mark.parametrize(
    ("text", "expecting", "first", "last"),
    [
        ("john smith", "name", "John", "Smith"),
        ("My name is maría garcía lópez", None, "María", "García López"),
        ("me llamo Juan Pérez", None, "Juan", "Pérez"),
        ("This is Bob O'Neil, call me", None, "Bob", "O'Neil"),
        ("McDonald Ray", "name", "McDonald", "Ray"),
    ],
)
def test_names(text: str, expecting: str | None, first: str, last: str) -> None:
    found = extract(text, expecting).found  # type: ignore[arg-type]
    assert (found.first_name, found.last_name) == (first, last)


@pytest.mark.parametrize("text", ["I'm hurt", "I am looking for a lawyer", "this is urgent"])
def test_phrases_that_are_not_names(text: str) -> None:
    assert extract(text).found.first_name is None


def test_a_first_name_alone_is_asked_again() -> None:
    findings = extract("John", "name")
    assert "name" in findings.invalid


def test_merge_keeps_old_values_and_takes_corrections() -> None:
    old = ContactDetails("Ann", "Lee", "5552017788", None, None)
    new = ContactDetails(None, None, "3125550199", "ann@example.com", None)
    assert merge(old, new) == ContactDetails("Ann", "Lee", "3125550199", "ann@example.com", None)
