"""The bot's replies in the visitor's language, from gettext catalogs kept with Babel.

Templates are English msgids marked with `N_` (`newchat._msgids`; `Reason` in `newchat.contact`), extracted by
`make messages` (pybabel extract/update) into `newchat/locales/messages.pot` and translated in
`newchat/locales/<language>/LC_MESSAGES/messages.po`. The .po files are compiled in memory at
start (Babel's read_po and write_mo), so no compiled catalog is kept in the repository and none
can go stale. English is the msgid itself.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from newchat._language import LANGUAGES, Language

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"


def _compiled(language: Language, locales: Path) -> gettext.NullTranslations:
    path = locales / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return gettext.NullTranslations()  # English: the msgids are the English text
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, abort_invalid=True)
    mo = io.BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    mo.seek(0)
    return gettext.GNUTranslations(mo)


class Replies:
    """Every reply template, in each language of `LANGUAGES`. Raises OSError or Babel's
    parse errors at construction when a catalog is unreadable (the engine then fails to start,
    rather than answering in the wrong language)."""

    def __init__(self, locales: Path = LOCALES) -> None:
        self._catalogs = {language: _compiled(language, locales) for language in LANGUAGES}

    def say(self, language: Language, template: str, **params: str) -> str:
        """`template` in `language`, its `{name}` parameters filled in."""
        return self._catalogs[language].gettext(template).format(**params)
