"""The reply catalogs: complete for every language, in step with the templates in the code, and
the visitor's language read from what they write."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import PoFileError, read_po

from newchat import LOCALES, LanguageDetector, Replies

ROOT = Path(__file__).parents[3]
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "Reason": None}  # as `make messages` runs it
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def templates_in_the_code() -> set[str]:
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / "newchat", method_map=[("**.py", "python")], keywords=KEYWORDS
        )
    }


def test_the_catalog_template_holds_exactly_the_templates_in_the_code() -> None:
    with (LOCALES / "messages.pot").open("rb") as pot:
        catalog = {m.id for m in read_po(pot) if m.id}
    assert catalog == templates_in_the_code(), "run `make messages` and translate what is new"


@pytest.mark.parametrize("language", ["es"])
def test_every_template_is_translated_with_no_placeholder_of_its_own(language: str) -> None:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    messages = [m for m in catalog if m.id]
    assert {m.id for m in messages} == templates_in_the_code()
    assert [m.id for m in messages if not m.string or m.fuzzy] == []
    for m in messages:  # a translation may leave a detail out, never ask for one not given
        assert set(PLACEHOLDER.findall(m.string)) <= set(PLACEHOLDER.findall(m.id)), m.id


def test_a_template_is_said_in_the_language_asked_with_its_details() -> None:
    replies = Replies()
    assert replies.say("en", "Thanks, {name}.", name="Ana") == "Thanks, Ana."
    assert replies.say("es", "Thanks, {name}.", name="Ana") == "Gracias, Ana."
    assert replies.say("es", "not in any catalog") == "not in any catalog"


def test_an_unreadable_catalog_stops_the_start(tmp_path: Path) -> None:
    po = tmp_path / "es" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid "x"\nmsgstr\n garbage\n', encoding="utf-8")
    with pytest.raises(PoFileError):
        Replies(tmp_path)


@pytest.fixture(scope="module")
def languages() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hola, tuve un accidente de carro y me duele el cuello", "es"),
        ("HOLA TUVE UN ACCIDENTE DE CARRO", "es"),  # capitals read as letters, not another script
        ("mi número es 305 555 0182", "es"),
        ("código postal 33130", "es"),
        ("sí, correcto", "es"),
        ("I was rear-ended and my neck hurts", "en"),
        ("my number is 305 555 0182", "en"),
        ("yes that's right", "en"),
        ("305-555-0182", None),
        ("carmen@example.com", None),
        ("90210", None),
        ("", None),
        # one word: judged by how common it is in each language (fastText took these as English)
        ("hola", "es"),
        ("abogado", "es"),
        ("divorcio", "es"),
        ("claro", "es"),
        ("hello", "en"),
        ("lawyer", "en"),
        ("hey", None),  # common in both
        ("ok", None),
        ("Phoenix", None),
    ],
)
def test_the_language_of_a_message(
    languages: LanguageDetector, text: str, language: str | None
) -> None:
    assert languages.language_of(text) == language
