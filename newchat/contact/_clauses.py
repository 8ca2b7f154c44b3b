"""Reading a value in its clause: whether the visitor says it is not theirs, or labels it as
another kind of number, and where a message corrects itself."""

from __future__ import annotations

import re

_RELATIVES = (
    r"wife|husband|partner|mom|mother|dad|father|son|daughter|brother|sister|friend|boss|"
    r"neighbor|neighbour|lawyer|attorney|esposo|esposa|pareja|mam[aá]|madre|pap[aá]|padre|"
    r"hijo|hija|hermano|hermana|amigo|amiga|jefe|vecino|vecina|abogado|abogada"
)
_NOT_THEIRS = re.compile(
    r"\bnot\s+(?:my|mine|the|this|that|a|an|\+?\(?\d)|\b(?:instead\s+of|rather\s+than|no\s+es|"
    r"en\s+vez\s+de|en\s+lugar\s+de|used\s+to|formerly|previously|antes|viv[ií]a|"
    r"old\s+(?:zip|address|number|phone|cell|email|one))\b"
    rf"|\b(?:{_RELATIVES})['’]s\b|\b(?:his|her|their)\b|\b(?:el|la|los|las)\s+de\s+(?:mi|su)\s+(?:{_RELATIVES})\b"
    rf"|\b(?:de|del)\s+(?:mi|su|la|el|otro|otra)\s+(?:{_RELATIVES}|otro|otra|conductor|conductora|"
    r"chofer|persona|señor|señora|compañ[ií]a|aseguradora)\b"
    r"|\b(?:the\s+)?other\s+(?:driver|party|guy|person|car|side)\b"
    r"|\b(?:he|she)(?:['’]s|\s+is)\b"
    rf"|\b(?:my|mi)\s+(?:{_RELATIVES})\s+(?:is|es)\b"
    r"|\b(?!(?:it|that|what|here|there|who|he|she|name|number|phone|cell|email|zip|address|"
    r"mine|one)['’]s\b)[^\W\d_]+['’]s\b",
    re.IGNORECASE,
)


def negated(text: str, start: int) -> bool:
    """A value the visitor says is not theirs, by a word earlier in its clause: a negation
    ("my cell 470-555-0146, not my work line 470-555-0100") or someone else's ("my wife's is
    480-555-0177", "el de mi esposo es 305-555-0182")."""
    clause = _clause_before(text, start) + text[start : start + 1]  # "not 212-..." sees the digit
    return bool(_NOT_THEIRS.search(clause))


_OTHER_NUMBER = re.compile(
    r"\b(?:claim|policy|case|report|badge|account|acct|reference|ref|confirmation|member|"
    r"license|licence|ticket|citation|docket|file|order|invoice|tracking|vin|ssn|social|"
    r"a-number|alien|receipt|incident|serial|fax|plate|caso|p[oó]liza|reclamo|expediente|"
    r"cuenta|folio|reporte|placa|licencia|multa|recibo)\b",
    re.IGNORECASE,
)
_PHONE_WORDS = re.compile(
    r"\b(?:phone|cell|cellphone|mobile|tel|telephone|call|text|reach|contact|"
    r"tel[eé]fono|celular|cel|ll[aá]m[ae]me|ll[aá]mame|whatsapp)\b",
    re.IGNORECASE,
)


def labelled_as_another_number(text: str, start: int) -> bool:
    """A number its clause calls something else and never a phone ("claim number 917...",
    "policy #...", "el número de reclamo es ..."); "my phone for the claim is ..." stays one."""
    clause = _clause_before(text, start)
    return bool(_OTHER_NUMBER.search(clause)) and not _PHONE_WORDS.search(clause)


CORRECTION = re.compile(
    r"\b(?:sorry|typo|i\s+mean|i\s+meant|correction|actually|oops|perd[oó]n|"
    r"me\s+equivoqu[eé]|quise\s+decir|en\s+realidad|corrijo|wrong|misspelled|mal\s+escrito)\b",
    re.IGNORECASE,
)
"""Words that say the message corrects an earlier detail (a name, a number)."""


CLAUSE_REACH = 160
"""Characters before a value that can be its clause: a clause is a few words ("the other
driver's number is"), and looking no further keeps a 5,000-character message of repeated values
linear (a blind helper's 2,000 characters of "my name is" took 0.8 s)."""


def clause_window(text: str, start: int) -> str:
    """The text before `start` that its clause can lie in (`CLAUSE_REACH`)."""
    return text[max(0, start - CLAUSE_REACH) : start]


def _clause_before(text: str, start: int) -> str:
    return _CLAUSE_END.split(clause_window(text, start))[-1]


_CLAUSE_END = re.compile(
    r"[,;:!?]|\.\s+(?=[A-ZÁÉÍÓÚÑ])|\.$|\b(?:but|pero|sino|or|o)\b"
    r"|\b(?:and|y)\s+(?=(?:mine|my|mi|el\s+m[ií]o|la\s+m[ií]a|I|yo)\b)",
    re.IGNORECASE,
)
"""Where a clause ends: punctuation, a full stop before a new sentence (not "no. 48213"),
"but", "or", and an "and" that turns to the visitor's own ("my wife's is ... and mine is ...",
"el de mi esposo es ... y el mío ...")."""
