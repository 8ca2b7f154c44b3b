"""Reading a value in its clause: whether the visitor says it is not theirs."""

from __future__ import annotations

import re

_NEGATION = re.compile(
    r"\b(?:not|instead\s+of|rather\s+than|no\s+es|en\s+vez\s+de|en\s+lugar\s+de)\b", re.IGNORECASE
)


def negated(text: str, start: int) -> bool:
    """A value the visitor says is not theirs: a negation earlier in its clause ("my cell
    470-555-0146, not my work line 470-555-0100")."""
    return bool(_NEGATION.search(re.split(r"[,.;:!?]", text[:start])[-1]))
