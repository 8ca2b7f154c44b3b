"""Names: which words cue one (the conversation's rule), and how it splits into a first and a
last name (nameparser: titles, particles, suffixes, any letters)."""

from __future__ import annotations

import re
import unicodedata

from nameparser import HumanName
from nameparser.config import CONSTANTS

from newchat.contact._clauses import CORRECTION, negated
from newchat.contact._reasons import Reason

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
        "lol",
        "her",
        "his",
        "him",
        "them",
        "their",
        "su",
        "sus",
        "tu",
        "un",
        "una",
        "back",
        "later",
        "soon",
        "tomorrow",
        "today",
        "tonight",
        "now",
        "asap",
        "anytime",
        "again",
        "anything",
        "anyone",
        "someone",
        "whenever",
        "mañana",
        "luego",
        "después",
        "despues",
        "ahora",
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
        # replies that are no name: uncertainty, a language, a yes (a blind helper's attack)
        "sé",
        "entiendo",
        "understand",
        "know",
        "idea",
        "sabe",
        "hablo",
        "habla",
        "claro",
        "vivo",
        "vive",
        "voy",
        "dar",
        "decir",
        "say",
        "rather",
        "favor",
        "en",
        "prefiero",
        "quiero",
        "puedo",
        "estoy",
        "tuve",
        "fui",
        "son",
        "daughter",
        "wife",
        "husband",
        "mother",
        "father",
        "mom",
        "dad",
        "brother",
        "sister",
        "hijo",
        "hija",
        "esposa",
        "esposo",
        "mamá",
        "papá",
        "cel",
        "cell",
        "celular",
    ]
)

MAX_NAME_PART = 40
MAX_CUES = 8
"""The last cues in a message read for a name: the last name given wins, and reading every one
of 181 "my name is" in 2,000 characters took 0.8 s (a blind helper's attack)."""
NAME_REACH = 200
"""Characters after a cue a name can lie in (ten words of up to `MAX_NAME_PART` letters fit)."""
SOMEONE_ELSES = Reason("I need your own name, as the person our attorney will call")
DECLINED = Reason("our attorney needs a name to call you by; a first and last name is enough")
_DECLINES = re.compile(
    r"\b(?:rather\s+not|prefer\s+not|prefiero\s+no|won['’]?t|will\s+not|not\s+(?:going\s+to|giving)|"
    r"(?:do\s+not|don['’]?t)\s+(?:want\s+to|wanna)|"
    r"no\s+(?:le\s+|te\s+|se\s+lo\s+)?(?:voy\s+a|quiero|puedo|doy|daré|dare))"
    r"(?:\W+[^\W\d_]+){0,4}?\W+(?:name|nombre)\b"
    r"|^\W*(?:anonymous|anon|an[oó]nim[oa])\W*$",
    re.IGNORECASE,
)
"""A visitor declining to give a name ("I'd rather not say my name", "no le voy a dar mi
nombre", "anonymous"): no name in that message, and the re-ask says why one is needed."""
_SYMBOLS = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200D]")
"""Emoji and their joiners: dropped from a name ("Ann 😀 Lee"), never the end of one."""

# Names.
_NAME_CUES = re.compile(
    r"\b(?:(?:my\s+)?(?:full\s+)?name\s+is|(?:my\s+)?name['’]s|name\s*:|my\s+full\s+name|call\s+me|"
    r"i\s+am|i'm|i’m|im|this\s+is|it\s+is|it's|it’s|its|me\s+llamo|"
    r"mi\s+nombre(?:\s+completo)?\s+es|mi\s+name\s+(?:es|is)|my\s+nombre\s+(?:es|is)|soy|se\s+llaman?|"
    r"(?:el\s+)?nombre\s+de\s+(?:mi|su|tu)\s+[^\W\d_]+(?:\s+es)?)\s+",
    re.IGNORECASE,
)
_SOMEONE_ELSES_CUE = re.compile(r"se\s+llama|(?:el\s+)?nombre\s+de\s", re.IGNORECASE)
"""Cues that always name someone else: "mi esposa se llama Ana Ruiz", "el nombre de mi hijo es
Pedro" (the visitor's own is "me llamo", "mi nombre es")."""
_ARTICLES = frozenset({"la", "el"})
_WHOSE = frozenset(
    {"her", "his", "their", "su", "sus", "the", "el", "la", "son", "daughter", "wife", "husband",
     "mother", "father", "mom", "dad", "brother", "sister", "hijo", "hija", "esposa", "esposo",
     "mamá", "papá", "hermano", "hermana", "partner", "pareja"}
)  # fmt: skip
"""Who the visitor is to someone else, between a cue and their name ("I'm her son Kevin")."""
"""Before a title after "soy": "soy la Sra. Guadalupe Hernández"."""
_WEAK_CUES = frozenset(
    {"i am", "i'm", "i’m", "im", "this is", "it is", "it's", "it’s", "its", "soy"}
)  # fmt: skip
"""Cues that also start ordinary sentences ("I'm worried", "it's about my son"): they name
someone only when the bot asked for a name or the next word is capitalised."""
_FILLERS = frozenset(
    {"yes", "yeah", "yep", "sure", "ok", "okay", "hi", "hello", "hey", "hola", "sí", "si",
     "claro", "bueno", "sorry", "perdón", "perdon", "oops", "no", "nope", "actually", "well",
     "so", "thanks", "gracias", "good", "morning", "afternoon", "evening", "buenos", "buenas",
     "días", "dias", "tardes", "noches", "name", "full", "nombre", "completo", "of", "course",
     "there", "lol", "thx", "ty", "pls", "plz"}
)  # fmt: skip
_NAME_END = re.compile(r"[,;:!?\n()]|\s[-–—]\s|[–—]|\d|(?<=\w)\.\s")
_NAME_END_OR_ADDRESS = re.compile(_NAME_END.pattern + r"|\S+@\S+")
"""`_NAME_END`, and an email address: only where the text has an @ (the address's pattern
scans every run of letters again from each of its characters)."""
"""Where a name ends: punctuation, a dash, a digit, an email address, or a full stop (unless it
closes a title, suffix or initial: `_split`)."""
_KEEPS_ITS_STOP = (
    frozenset(CONSTANTS.titles)
    | frozenset(CONSTANTS.suffix_acronyms)
    | frozenset(CONSTANTS.suffix_not_acronyms)
)
"""nameparser's titles and suffixes ("dr", "dra", "sra", "jr"): a full stop after one does not
end the name."""


def _split(text: str, maxsplit: int = 0) -> list[str]:
    """`text` cut where a name ends (`_NAME_END`), "Dr. Ann Lee" and "Robert L. Hayes" kept."""
    parts: list[str] = []
    start = 0
    for match in (_NAME_END_OR_ADDRESS if "@" in text else _NAME_END).finditer(text):
        if match.group(0).startswith("."):
            before = text[: match.start()].rsplit(maxsplit=1)
            word = before[-1].lower() if before else ""
            if len(word) == 1 or word in _KEEPS_ITS_STOP:
                continue
        parts.append(text[start : match.start()])
        start = match.end()
        if maxsplit and len(parts) == maxsplit:
            break
    parts.append(text[start:])
    return parts


_NEVER_NAMES = frozenset(
    {"english", "spanish", "español", "espanol", "inglés", "ingles", "test", "testing", "prueba",
     "anonymous", "anon", "anónimo", "anonimo", "anónima", "anonima", "unknown", "desconocido",
     "wrong", "misspelled", "misspelt", "different", "hyphenated", "unchanged", "incorrect",
     "incorrecto", "incorrecta", "mal", "está", "esta", "escrito", "spelling", "typo", "correct",
     "right", "fine", "same", "missing", "bad", "old", "outdated", "changed", "igual", "bien",
     "equivocado", "equivocada", "distinto", "diferente", "spelled", "spelt", "written"}
)  # fmt: skip
"""Words that judge a detail ("my last name is wrong", "mi apellido está mal escrito"), name a
language ("hablo español") or stand in for a name ("Test Test", "anonymous"): never a name,
however they are capitalised."""
_NOT_A_NAME_AT_ALL = frozenset(
    {"dear", "madam", "sirs", "whom", "estimado", "estimada", "estimados"}
)  # fmt: skip
"""A letter's salutation ("Dear Sir", "To whom it may concern", "Estimado señor"): wherever it
stands in a message, that message gives no name. (An answer that reads as what happened, "Car
Accident", is the conversation's to judge, with the practice-area classifier.)"""
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_run(word: str) -> bool:
    """Three or more letters running along one QWERTY row ("asdf", "qwer", "lkjh"): a visitor
    testing the box, not a name (no given name or surname in our sets is one)."""
    lowered = word.lower()
    return len(lowered) >= 3 and any(
        lowered in row or lowered in row[::-1] for row in _KEYBOARD_ROWS
    )


_CONTRACTION = re.compile(r"[^\W\d_]{2,}['’](?:s|re|ll|ve|d|m|t)")
"""An English contraction ("it's", "that's", "we're", "don't"), never a name word; "O'Neil" and
"D'Angelo" have one letter before the apostrophe."""
_NEVER_FIRST = frozenset(
    {"i", "im", "i'm", "my", "me", "you", "your", "we", "our", "he", "she", "they", "it", "the",
     "this", "that", "is", "are", "was", "were", "not", "no", "yes", "a", "and", "or", "but",
     "for", "to", "of", "in", "on", "at", "with", "from", "about", "do", "does", "did", "have",
     "has", "had", "what", "why", "who", "how", "where", "which", "when", "if", "there", "here",
     "please", "just", "looking", "calling", "need", "want", "help", "lawyer", "attorney",
     "her", "his", "him", "them", "their", "su", "sus", "tu", "un", "una", "el", "la", "los",
     "las", "mi", "its", "ive", "id", "thats", "theres", "hes", "shes", "youre", "dont",
     "cant", "soy", "es", "llamo", "call", "name", "hi", "hello", "hey", "thanks", "ok", "okay",
     "que", "sé", "se", "entiendo", "hablo", "habla", "vivo", "vive", "voy", "nombre", "en",
     "prefiero", "quiero", "puedo", "estoy", "tuve", "fui", "son", "daughter", "wife", "husband",
     "mother", "father", "mom", "dad", "hijo", "hija", "esposa", "esposo", "cel", "cell",
     "celular"}
)  # fmt: skip
"""Words that never begin a name, however they are capitalised. Other ordinary words do when a
capitalised name word follows: "Will Hope", "An Tran", "Am Nguyen", "Can Yilmaz"."""


def _is_name_part(word: str) -> bool:
    """Letters in any script, with their combining marks (Devanagari, Thai, decomposed
    accents), apostrophes, hyphens and full stops; starting with a letter."""
    return (
        bool(word)
        and unicodedata.category(word[0]).startswith("L")
        and all(unicodedata.category(c)[0] in "LM" or c in "'’.-" for c in word)
    )


def _capitalised(name: str) -> str:
    """A name typed in one case, capitalised: each part of a hyphenated or apostrophed word
    ("o'neil" -> O'Neil, "gonzalez-rivera" -> Gonzalez-Rivera), particles lower-case
    ("de la Cruz", "al-Farsi"), "Mc" names as McDonald. Not nameparser's capitalise, which makes "machado"
    "MacHado": Mac- is rare here, Machado and Macias are not."""
    words = []
    for word in name.lower().split():
        if word in _PARTICLES:
            words.append(word)
            continue
        if _ROMAN.fullmatch(word.rstrip(".")):
            words.append(word.upper())  # "walker iii" -> Walker III
            continue
        parts = re.split(r"([-'’])", word)
        cased = "".join(
            part
            if n == 0 and part in _PARTICLES and len(parts) > 1
            else _mc(part[:1].upper() + part[1:])
            for n, part in enumerate(parts)
        )  # "al-farsi" -> al-Farsi, "mcdonald-ross" -> McDonald-Ross
        words.append(cased)
    return " ".join(words)


def _mc(part: str) -> str:
    """ "Mcdonald" -> McDonald."""
    return "Mc" + part[2:].capitalize() if part.startswith("Mc") and len(part) > 2 else part


_ROMAN = re.compile(r"(?:ii|iii|iv|vi|vii|viii)")
"""A generational suffix in capitals ("III"), never as a word ("Iii"); "v" and "x" are left
alone (initials)."""
_PARTICLES = frozenset(
    {"de", "del", "la", "las", "los", "van", "von", "der", "den", "ten", "ter", "bin", "ibn",
     "bint", "da", "di", "du", "dos", "das", "le", "el", "al", "y", "e"}
)  # fmt: skip
"""Lower-case words inside a surname ("de la Cruz", "van der Berg", "bin Rashid")."""


def _bare(word: str) -> str:
    """`word` without surrounding punctuation; the full stop of a title, suffix or initial
    kept ("Dr.", "Jr.", the "L." of "Robert L. Hayes")."""
    bare = word.strip(",'’-")
    abbreviation = bare[:-1].lower() in _KEEPS_ITS_STOP or len(bare) == 2
    if bare.endswith(".") and not abbreviation:
        bare = bare.rstrip(".")
    return bare


def _capitalised_name_word(word: str, typed_in_one_case: bool) -> bool:
    return word[:1].isupper() and not typed_in_one_case


def _names_next(following: list[str]) -> bool:
    """The word after an ordinary first word is a capitalised name word ("Will *Hope*")."""
    if not following:
        return False
    bare = _bare(following[0])
    lowered = bare.lower()
    return (
        bare[:1].isupper()
        and _is_name_part(bare.rstrip("."))
        and lowered not in _NOT_NAME_WORDS
        and lowered not in _NEVER_NAMES
    )


def _ends_the_name(word: str, kept: list[str], following: list[str], one_case: bool) -> bool:
    """Whether `word` (bare) ends a name that has `kept` so far and `following` after it."""
    lowered = word.lower()
    if not _is_name_part(word.rstrip(".")) or lowered in _NEVER_NAMES:
        return True
    if len(kept) >= 2 and word.islower() and not one_case:
        return True  # "Ann Lee car accident": the name ended before the lower-case words
    if _CONTRACTION.fullmatch(lowered):
        return True  # "it's for my dad", "that's Ann": a contraction is never part of a name
    # "Ann Lee and I was hurt" ends at "and"; but "Nguyen Van An" and "Will Hope" are names
    return lowered in _NOT_NAME_WORDS and not (
        _capitalised_name_word(word, one_case)
        and (kept or (lowered not in _NEVER_FIRST and _names_next(following)))
    )


def _name_from(words: list[str]) -> tuple[str, str] | None:
    """(first, last) by nameparser: titles dropped, middle names, particles and suffixes kept
    with the last name ("José García López" -> José / García López); an all-lowercase or
    all-uppercase name capitalised ("maria de la cruz" -> Maria / de la Cruz)."""
    while words and _bare(words[0]).lower() in _FILLERS:
        words = words[1:]
    typed_in_one_case = " ".join(words).islower() or " ".join(words).isupper()
    kept: list[str] = []
    for n, word in enumerate(words[:10]):
        bare = _bare(word)
        lowered = bare.lower()
        if lowered in _NOT_A_NAME_AT_ALL or _keyboard_run(bare):
            return None
        if kept and lowered in _PARTICLES:
            kept.append(bare)
            continue
        if _ends_the_name(bare, kept, words[n + 1 : n + 2], typed_in_one_case):
            if len(kept) == 1 and lowered in _NEVER_FIRST:
                return None  # "Hope you can help me", "June was when": a sentence, no name
            break
        kept.append(bare)
    while kept and kept[-1].lower() in _PARTICLES and not _short_surname(kept, typed_in_one_case):
        kept.pop()
    if not kept:
        return None
    return _parsed(kept, typed_in_one_case)


def _short_surname(kept: list[str], one_case: bool) -> bool:
    """A last word that is also a particle but here a surname: "Kim Le", "Ann Du", "Linh Do"."""
    return len(kept) == 2 and (kept[-1][:1].isupper() or one_case)


def _parsed(kept: list[str], typed_in_one_case: bool) -> tuple[str, str] | None:
    """(first, last) of name words by nameparser, capitalised when typed in one case (the
    first word always: "van nguyen" -> Van Nguyen). Middle names go with the surname, as the
    lead has no field for them ("María José Peña" -> María / José Peña: the labelled sets'
    convention, written blind by three helpers)."""
    if not typed_in_one_case:  # "Ann lee": the word typed in lower case capitalised too
        kept = [_capitalised(w) if w.islower() and w not in _PARTICLES else w for w in kept]
    typed = " ".join(kept)
    if typed_in_one_case:
        typed = _capitalised(typed)
        typed = typed[:1].upper() + typed[1:]
    name = HumanName(typed)
    last = " ".join(part for part in (name.middle, name.last, name.suffix) if part)
    if not name.first:  # "Mr. Lee": the surname, with the first name still to ask for
        return ("", last) if name.title and last and len(last) <= 2 * MAX_NAME_PART else None
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
        words = _split(text[match.end() :], maxsplit=1)[0].split()
        placeholder = "x" if " ".join(words).islower() else "X"  # keeps the words' own case
        parsed = _name_from([placeholder, *words])  # parsed as the surname of a placeholder
        if parsed and parsed[1]:
            found = parsed[1]
    return found


_LAST_COMMA_FIRST = re.compile(r"^\s*([^\W\d_][^,\d@]*?)\s*,\s*([^\W\d_][^,\d@]*?)\s*[.!]*\s*$")


_JOINING = frozenset(
    {"and", "or", "but", "i", "my", "me", "you", "your", "the", "is", "are", "was", "were",
     "it", "to", "of", "in", "on", "at", "for", "with", "from", "y", "o", "pero", "que", "por",
     "para", "con", "mi", "su", "es"}
)  # fmt: skip
"""Words that join a sentence: never inside a name, even typed in one case."""
_ONE_WORD_LINES = re.compile(r"[^\W\d_][\w'’.-]*(?:[ \t]*\n[ \t]*[^\W\d_][\w'’.-]*){1,4}")
"""A name typed a word a line ("mario\nlópez"): one name, at the name step."""
_NICKNAME = re.compile(r"\s[(\"“]\s*[^\W\d_][\w'’.-]*\s*[)\"”](?=\s)")
"""A nickname between a first and a last name: "Ann (Annie) Lee", 'Robert "Bob" Smith'."""


def _name_word(word: str) -> bool:
    lowered = word.lower()
    return (
        _is_name_part(word.rstrip("."))
        and lowered not in _NEVER_NAMES
        and lowered not in _NOT_A_NAME_AT_ALL
        and not _keyboard_run(word)
        and not _CONTRACTION.fullmatch(lowered)
    )


def _whole_name(words: list[str], *, ordinary_first: bool = True) -> tuple[str, str] | None:
    """`words` when they are nothing but a first and last name, in any case: "Ann Lee", "will
    smith", "an tran", "linh do", "Kim Le" (fillers before it and titles aside). Two to ten
    name words; the first never a word that starts a sentence ("my", "the", "i"), none that
    joins one ("and", "you"); ordinary words ("Will", "Still") only capitalised, or in a
    two-word answer typed in one case (the first only with `ordinary_first`: not after "call
    me", where "after five" is a time)."""
    while words and _bare(words[0]).lower() in _FILLERS:
        words = words[1:]
    bare = [_bare(w) for w in words]
    named = [w for w in bare if w.lower().rstrip(".") not in CONSTANTS.titles]
    one_case = " ".join(named).islower() or " ".join(named).isupper()
    if not 2 <= len(named) <= 10 or not all(_name_word(w) for w in bare):
        return None
    if named[0].lower() in _NEVER_FIRST or any(w.lower() in _JOINING for w in named[1:]):
        return None
    if not ordinary_first and one_case and named[0].lower() in _NOT_NAME_WORDS:
        return None
    for word in named[1:]:
        lowered = word.lower()
        if lowered in _PARTICLES or (word[:1].isupper() and not one_case):
            continue
        if len(named) == 2 and named[0][:1].isupper() and lowered not in _NOT_NAME_WORDS:
            continue  # "Will smith", "Ann lee"
        if not one_case or (lowered in _NOT_NAME_WORDS and len(named) > 2):
            return None  # "Ann Lee car accident" is a sentence; "john will" a name
    if not one_case and not named[0][:1].isupper():
        return None
    parsed = _parsed(bare, one_case)
    return parsed if parsed and parsed[0] and parsed[1] else None


def _name_segment(text: str) -> tuple[str, str] | None:
    """The first comma-separated part of `text` that is a whole name ("Good morning, Ann Lee",
    "Ann Lee, thanks", "I'm her son, Robert Walker"); a capitalised one first when the text
    mixes cases ("buenas tardes, Ana Torres")."""
    segments = _segments(_NICKNAME.sub(" ", text))
    capitalised = [
        w for w in segments if all(x[:1].isupper() for x in w if x.lower() not in _PARTICLES)
    ]
    for words in capitalised + [w for w in segments if w not in capitalised]:
        if found := _whole_name(words):
            return found
    return None


def _capitalised_run(text: str) -> tuple[str, str] | None:
    """The first run of capitalised name words (particles within) inside a sentence, none of
    them an ordinary word: "I'm her son Robert Walker", "soy su hija Carmen Ruiz"."""
    for words in _segments(_NICKNAME.sub(" ", text)):
        run: list[str] = []
        for word in [*map(_bare, words), ""]:
            ordinary = word.lower() in _NOT_NAME_WORDS | _NEVER_FIRST | _FILLERS
            if word[:1].isupper() and _name_word(word) and not ordinary:
                run.append(word)
                continue
            if run and word.lower() in _PARTICLES:
                run.append(word)  # "de la", "van der" inside the run
                continue
            if len(run) >= 2 and (found := _whole_name(run)):
                return found
            run = []
    return None


def _only_a_name(words: list[str]) -> tuple[str, str] | None:
    """`words` when they are a first and last name and nothing else (titles aside)."""
    named = [w for w in words if _bare(w).lower().rstrip(".") not in CONSTANTS.titles]
    parsed = _name_from(words) if 2 <= len(named) <= 5 else None
    if parsed and parsed[1] and len(" ".join(parsed).split()) == len(named):
        return parsed
    return None


def _bare_full_name(segments: list[list[str]]) -> tuple[str, str] | None:
    """The last segment that is nothing but a capitalised ("John Stephens") full name."""
    found = None
    for words in segments:
        if all(w[:1].isupper() and not w.isupper() for w in words if len(w) > 1):
            found = _only_a_name(words) or found
    return found


def _last_comma_first(text: str) -> tuple[str, str] | None:
    """ "Reyes, Daniela": a surname, a comma, a given name (nameparser's own form). Both sides
    name words only, the surname of at most two words besides particles and the given name of
    one or two (not both two): "Ann Lee, Dallas TX" and "soy la esposa, Ana Torres" are not."""
    match = _LAST_COMMA_FIRST.match(text)
    if not match:
        return None
    last, first = match.group(1).split(), match.group(2).split()
    surname_words = [w for w in last if w.lower() not in _PARTICLES]
    sizes = len(surname_words), len(first)
    if not (1 <= sizes[0] <= 2 and 1 <= sizes[1] <= 2) or sum(sizes) > 3:
        return None
    words = [_bare(w) for w in [*last, *first]]
    if not all(_name_word(w) for w in words) or any(
        w.lower() in _NEVER_FIRST | _NOT_NAME_WORDS | _FILLERS for w in words
    ):
        return None
    one_case = text.islower() or text.isupper()
    if not one_case and not all(w[:1].isupper() for w in words if w.lower() not in _PARTICLES):
        return None
    typed = f"{' '.join(last)}, {' '.join(first)}"
    name = HumanName(_capitalised(typed) if one_case else typed)
    surname = " ".join(part for part in (name.last, name.suffix) if part)
    return (name.first, surname) if name.first and surname else None


def _segments(text: str) -> list[list[str]]:
    return [words for words in (part.split() for part in _split(text)) if words]


def _is_title(word: str) -> bool:
    return _bare(word).lower().rstrip(".") in CONSTANTS.titles


_BEFORE_A_SURNAME = frozenset({"y", "and", "mi", "my", "e", "su", "your", "the", "el"})
_GIVEN_LABELS = frozenset({"nombre", "name", "first", "primer", "given", "is", "es"})


def _given_before(text: str) -> str:
    """The given name before a surname label, when nothing else named one: "Juan y mi apellido
    es Pérez", "nombre Juan apellido Pérez", "nombre: Juan, apellido: Pérez"."""
    label = _LAST_LABEL.search(text)
    if label is None:
        return ""
    words = [_bare(w.strip(",;:.")) for w in text[: label.start()].split()]
    words = [w for w in words if w]
    while words and words[-1].lower() in _BEFORE_A_SURNAME:
        words.pop()
    while words and words[0].lower() in _GIVEN_LABELS:
        words.pop(0)
    ordinary = _NOT_NAME_WORDS | _NEVER_FIRST | _FILLERS  # "perdón, mi apellido es Martínez"
    if len(words) != 1 or not _name_word(words[0]) or words[0].lower() in ordinary:
        return ""
    return _capitalised(words[0]) if words[0].islower() else words[0]


MAX_RENAMING_WORDS = 8
"""A renaming is a short message ("actually its sarah mcdonald-ross"); in a longer one the held
first name may be an ordinary word ("la casa blanca ...")."""


def renamed(text: str, held_first: str) -> tuple[str, str] | None:
    """A full name starting with the first name already held, in any case, anywhere in a short
    message: the visitor completing or correcting their name after the name step ("blanca
    estela rosales", "actually its sarah mcdonald-ross"). None when there is none."""
    if len(text.split()) > MAX_RENAMING_WORDS:
        return None
    held = held_first.casefold()
    for segment in _segments(text):
        lowered = [_bare(w).casefold() for w in segment]
        if held not in lowered:
            continue
        parsed = _name_from(segment[lowered.index(held) :])
        if parsed and parsed[1] and parsed[0].casefold() == held:
            return parsed
    return None


def names_a_first_name(text: str) -> bool:
    """The visitor labels a first name ("my first name is Anne"): it replaces the one held."""
    return _labelled_part(_FIRST_LABEL, text) is not None


def _cued_name(
    text: str, expecting: bool, *, weak_ok: bool, invalid: dict[str, Reason] | None
) -> tuple[tuple[str, str | None] | None, str]:
    """The last name after a cue, and `text` with someone else's name blanked out (never read
    again as the visitor's); `invalid` says so when only someone else's was given."""
    found: tuple[str, str | None] | None = None
    unlabelled = _LAST_LABEL.sub(", ", _FIRST_LABEL.sub(", ", text))  # "last name is" cues no name
    for cue in list(_NAME_CUES.finditer(unlabelled))[-MAX_CUES:]:
        words = _split(unlabelled[cue.end() : cue.end() + NAME_REACH], maxsplit=1)[0].split()
        if not words:
            continue
        if negated(unlabelled, cue.start()) or _SOMEONE_ELSES_CUE.match(cue.group(0)):
            # "her name is Rosa Diaz", "my mother's name is", "mi esposa se llama Ana Ruiz"
            if invalid is not None and found is None:
                invalid["name"] = SOMEONE_ELSES
            theirs = _split(unlabelled[cue.end() :], maxsplit=1)[0]
            text = text.replace(theirs, " " * len(theirs), 1)
            continue
        if len(words) > 1 and words[0].lower() in _ARTICLES and _is_title(words[1]):
            words = words[1:]  # "soy la Sra. Guadalupe Hernández"
        while len(words) > 2 and _bare(words[0]).lower() in _WHOSE:
            words = words[1:]  # "im her son kevin smith", "soy su hija Carmen Ruiz"
        weak = " ".join(cue.group(0).lower().split()) in _WEAK_CUES
        if weak and (not weak_ok or (not expecting and not words[0][:1].isupper())):
            continue
        vouches = not cue.group(0).lower().startswith("call")  # "call me after five" is a time
        found = _whole_name(words, ordinary_first=vouches) or _name_from(words) or found
    return found, text


def find_name(
    text: str,
    expecting: bool,
    *,
    whole: bool = False,
    any_case: bool = False,
    weak_cues: bool = True,
    invalid: dict[str, Reason] | None = None,
) -> tuple[str, str | None] | None:
    """The last name given after a cue ("my name is", "call me", "me llamo", "soy") or labelled
    ("first name Ann, last name Lee", "mi apellido es Becerra": a surname alone, with an empty
    first name); when the bot asked for a name, the first words that are not fillers (or
    "Surname, Given"); and, with `whole` or in a correction ("sorry, typo - John Stephens"), a
    bare capitalised full name ("Nora Quinn"; with `any_case` also a whole message typed in one
    case, "jorge alberto mendoza"). Without `weak_cues` (a name is already held), "I'm", "it's"
    and "this is" cue nothing: "I'm Deaf Mute so text ...", "It's Beverly Hills 90210". A name
    the visitor gives as someone else's ("her name is", "my mother's name is") is never theirs:
    `invalid` (when given) then says the bot needs the visitor's own."""
    found: tuple[str, str | None] | None = None
    if _DECLINES.search(text):
        if invalid is not None:
            invalid["name"] = DECLINED
        return None
    text = _NICKNAME.sub(" ", _SYMBOLS.sub(" ", text))  # 'robert "bobby" tran jr'
    if expecting and _ONE_WORD_LINES.fullmatch(text.strip()):
        text = " ".join(text.split())  # "mario\nlópez": a name typed a word a line
    correction = CORRECTION.search(text)
    weak_ok = bool(weak_cues or correction)  # "it's John Petersen" fixing a name counts
    found, text = _cued_name(text, expecting, weak_ok=weak_ok, invalid=invalid)
    first = _labelled_part(_FIRST_LABEL, text)
    last = _labelled_part(_LAST_LABEL, text)
    if first or last:  # "me llamo Ana y mi apellido es García": the cue's first name, the label's
        given = first.split()[0] if first else (found[0] if found else _given_before(text))
        return (given, last)
    if expecting and (found is None or not found[1]):
        found = _name_segment(text) or _last_comma_first(text) or found
    if found is None and expecting:
        found = _capitalised_run(text)
    if found is None and expecting:
        segments = [w for w in _segments(text) if any(_bare(x).lower() not in _FILLERS for x in w)]
        found = _name_from(segments[0]) if segments else None
    if correction:  # "Mark Sullivan — sorry, Marcus Sullivan": the name after the correction
        found = _bare_full_name(_segments(text[correction.end() :])) or found
    if (found is None or not found[1]) and whole:
        segments = _segments(text)
        if any_case and len(segments) == 1:
            found = _only_a_name(segments[0]) or found
        found = _bare_full_name(segments) or found
    return found
