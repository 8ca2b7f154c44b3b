"""Reading a value in its clause: whether the visitor says it is not theirs."""

from __future__ import annotations

import re

_RELATIVES = (
    r"wife|husband|partner|mom|mother|dad|father|son|daughter|brother|sister|friend|boss|"
    r"neighbor|neighbour|lawyer|attorney|esposo|esposa|pareja|mam[aá]|madre|pap[aá]|padre|"
    r"hijo|hija|hermano|hermana|amigo|amiga|jefe|vecino|vecina|abogado|abogada"
)
_NOT_THEIRS = re.compile(
    r"\bnot\s+(?:my|mine|the|this|that|a|an|\+?\(?\d)|\b(?:instead\s+of|rather\s+than|no\s+es|"
    r"en\s+vez\s+de|en\s+lugar\s+de)\b"
    rf"|\b(?:{_RELATIVES})['’]s\b|\b(?:his|her|their)\b|\b(?:el|la|los|las)\s+de\s+(?:mi|su)\s+(?:{_RELATIVES})\b",
    re.IGNORECASE,
)


def negated(text: str, start: int) -> bool:
    """A value the visitor says is not theirs, by a word earlier in its clause: a negation
    ("my cell 470-555-0146, not my work line 470-555-0100") or someone else's ("my wife's is
    480-555-0177", "el de mi esposo es 305-555-0182")."""
    clause = re.split(r"[,.;:!?]|\b(?:but|pero|sino)\b", text[:start], flags=re.IGNORECASE)[-1]
    return bool(_NOT_THEIRS.search(clause))
