"""The intake conversation: practice area, then name, phone, email and ZIP, a read-back, then a
queued lead.

Steps are deterministic whatever produced the category; replies are templates. Several details
in one message are all taken; an invalid detail is asked for again, saying what was wrong. Once
every detail is in, the bot reads them back (`confirm`): a correction updates the detail and reads
back again, a yes queues the lead. A finished conversation queues exactly one lead (the session
id is its idempotency key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

import msgspec

from common import is_session_id, session_hash
from newchat._categories import GENERAL, Category
from newchat._language import Language, LanguageDetector
from newchat._metrics import Metrics
from newchat._replies import Replies
from newchat._sessions import SessionState, Step
from newchat._wording import (
    NOT_A_NAME,
    NOT_YES,
    START_OVER,
    TELL_ME_MORE,
    TOO_LATE,
    UPDATED,
    WITHOUT_EMAIL,
    Wording,
)
from newchat.contact import NOT_FOUND, ContactDetails, Field, Findings, Reason, extract, merge
from newchat.detection import CategoryDetector
from newchat.leads import Lead

CONTACT_ORDER: tuple[Field, ...] = ("name", "phone", "email", "zip")
MAX_DESCRIBE_ASKS = 1
"""How often `general` leads to "tell me more" before the intake goes on anyway."""
MIN_MATTER_WORDS = 3
"""Words a message needs before a `general` conversation reads it for a practice area."""
MIN_WORDS_TO_SWITCH = 3
"""Words a message needs to switch a conversation's language once set: "no", "ok" and "hola"
alone are both languages', and a Spanish speaker's "Yes correct" or "my cell 480..." at the end
is not a switch (a blind helper's conversations); asking for a language always switches."""


def _asking_for(names: str) -> re.Pattern[str]:
    """A request for the language `names` (a regex of its names in English and Spanish)."""
    return re.compile(
        rf"^\W*(?:(?:in|en)\s+)?(?:{names})\W*$"  # "English?", "en español"
        rf"|\b(?:{names})\W*(?:please|por\s+favor)\b"  # "english please"
        rf"|\b(?:i\s+speak|speak|hablo|prefiero(?:\s+hablar)?)\s+(?:in\s+|en\s+)?(?:{names})\b"
        rf"|(?:^|¿)\s*hablas?\s+(?:usted\s+)?(?:{names})\b",  # "¿habla español?"
        re.IGNORECASE,
    )


_ASKED_FOR: tuple[tuple[Language, re.Pattern[str]], ...] = (
    ("en", _asking_for(r"english|ingl[eé]s")),
    ("es", _asking_for(r"spanish|espa[nñ]ol")),
)
"""A visitor asking for a language ("english please", "¿habla español?", "prefiero hablar en
español"); after a negation ("I don't speak Spanish", "no hablo inglés") it asks for nothing, and
a language named in passing ("me mandaron una carta en inglés", "my boss speaks Spanish") is no
request."""
_NEGATION = re.compile(r"\b(?:no|not|don'?t|do\s+not|can'?t|cannot)\s+(?:\w+\s+)?$", re.IGNORECASE)


class Sessions(Protocol):
    """Where conversations live between turns: `SessionStore` (Redis), or memory for an
    offline evaluation (`newchat.fidelity`)."""

    def new(self) -> SessionState: ...
    def key(self, session_id: str) -> str: ...
    async def load(self, session_id: str) -> SessionState | None: ...
    def decode(self, session_id: str, raw: bytes | str | None) -> SessionState | None: ...
    async def save(self, state: SessionState) -> None: ...


class LeadSink(Protocol):
    """Where a finished conversation's lead goes: the real queue, or a shadow recorder."""

    async def enqueue(self, lead: Lead) -> str: ...
    async def amend(self, lead_id: str, contact: dict[str, str]) -> bool: ...


class ChatReply(msgspec.Struct, frozen=True):
    """The contract's reply body (field names are the widget's)."""

    sessionId: str  # noqa: N815 - the public contract's spelling
    reply: str
    category: Category | None
    step: Step
    done: bool
    collected: list[str] = msgspec.field(default_factory=list)
    """Which contact details the conversation has so far (names only, never the values)."""


class ShadowChatReply(ChatReply, frozen=True):
    """A mirrored turn's reply: the contract's fields and the values held, shaped as legacy's
    reply carries them (`{"name", "phone", "email", "zip"}`), for the gateway's value
    comparison (`proxy._compare`). Only the gateway reads it; no visitor ever gets one."""

    contact: dict[str, str] = msgspec.field(default_factory=dict)


def contact_values(contact: ContactDetails) -> dict[str, str]:
    """The held values by field (the name as "first last")."""
    values = {
        "name": " ".join(part for part in (contact.first_name, contact.last_name) if part),
        "phone": contact.phone or "",
        "email": contact.email or "",
        "zip": contact.zip or "",
    }
    return {field: value for field, value in values.items() if value}


_YES_WORDS = frozenset(
    {"yes", "yeah", "yea", "ya", "yep", "yup", "sip", "correct", "right", "good", "fine", "ok",
     "okay", "confirm", "confirmed", "perfect", "exactly", "sí", "si", "así", "asi", "correcto",
     "exacto", "bien", "perfecto", "claro", "sure", "dale", "okey", "oki", "simon", "simón",
     "y", "yess", "ye", "ys", "va", "sale", "órale", "orale"}
)  # fmt: skip
_AGREEING_WORDS = frozenset(
    {"that", "that's", "thats", "it's", "its", "it", "is", "all", "everything", "looks",
     "sounds", "are", "they", "those", "details", "info", "information", "totally",
     "absolutely", "definitely", "very", "great", "thanks", "thank", "you", "please", "sir",
     "ma'am", "maam", "go", "ahead", "do", "submit", "send", "true", "indeed",
     "of", "course", "sure", "todo", "está", "esta", "es", "eso", "son", "los", "datos", "muy",
     "gracias", "señor", "señora", "adelante", "envíe", "envie", "mande", "exactamente",
     "perfectamente", "de", "acuerdo", "vale", "dale", "listo", "okey", "oki", "k", "kk",
     "now", "ahora", "me", "soy", "yo", "alright", "everything's", "que", "ta", "tá", "pues",
     "también", "tambien"}
)  # fmt: skip
"""Words a plain confirmation is made of besides the yes itself ("yes, that's all correct,
thank you"). A confirmation holds nothing else: "correct except the zip", "yes wait", "I don't
think that's right" and "casi bien, falta un número" are not one."""
_ADDRESS = re.compile(r"\S+@\S+|\S+://\S+|\w+(?:\.\w+)*\.[^\W\d_]{2,}\b")
"""An email address, a URL or a domain: no language in them ("carmen@gmail.com",
"paolaserrano.example.com")."""
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def _asked_for(message: str) -> Language | None:
    """The language the message asks for in so many words (`_ASKED_FOR`), if any."""
    for language, pattern in _ASKED_FOR:
        for match in pattern.finditer(message):
            if not _NEGATION.search(message[: match.start()]):
                return language
    return None


_SENTENCE_START = re.compile(r"(?:^|[.!?¿¡:;\n]\s*)$")


def _common_words(message: str) -> list[str]:
    """The message's words without proper nouns: a capitalised word that does not begin a
    sentence names a place, a person or a firm ("Phoenix AZ", "El Paso TX", "La Puente") and says
    nothing of the visitor's language. A message in capitals keeps every word."""
    if message.isupper():
        return _WORD.findall(message)
    return [
        m.group(0)
        for m in _WORD.finditer(message)
        if not m.group(0)[:1].isupper()
        or m.group(0) == "I"
        or _SENTENCE_START.search(message[: m.start()])
    ]


def _squeezed(word: str) -> str:
    """`word` with each run of one letter kept once: "yesss" and "yes", "siii" and "si" meet."""
    return re.sub(r"(.)\1+", r"\1", word.lower().replace("’", "'"))


_YES_SQUEEZED = frozenset(_squeezed(word) for word in _YES_WORDS)
_CONFIRMING = _YES_SQUEEZED | frozenset(_squeezed(word) for word in _AGREEING_WORDS)


def _is_yes(message: str) -> bool:
    """A plain confirmation: at least one yes ("yes", "yess", "correct", "sí", "así es") and
    nothing but confirming words, no question ("is that right?")."""
    if "?" in message:
        return False
    words = [_squeezed(w) for w in _WORD.findall(message)]
    return 0 < len(words) <= 10 and bool(_YES_SQUEEZED & set(words)) and set(words) <= _CONFIRMING


_WHY = re.compile(r"\b(?:why|what\s+for|por\s*qu[eé]|para\s+qu[eé])\b", re.IGNORECASE)


def _asks_why(message: str) -> bool:
    return "?" in message and bool(_WHY.search(message))


def _taking_the_suggestion(state: SessionState, message: str, findings: Findings) -> Findings:
    """After "Did you mean ann@gmail.com?", a plain yes takes the suggested address."""
    suggested = state.suggested_email
    reason = findings.invalid.get("email")
    state.suggested_email = reason.params.get("suggestion") if reason else None
    if suggested and not findings.found.email and _is_yes(message):
        invalid = {k: v for k, v in findings.invalid.items() if k != "email"}
        return Findings(msgspec.structs.replace(findings.found, email=suggested), invalid)
    return findings


def _completing_the_name(held: ContactDetails, findings: Findings) -> Findings:
    """Asked for the surname after a first name alone ("its maria"), one word is that surname
    ("Lopez"), not a new first name. Other findings are returned as they are."""
    found = findings.found
    if not (held.first_name and not held.last_name and found.first_name and not found.last_name):
        return findings
    if findings.first_name_labelled:
        return findings
    invalid = {k: v for k, v in findings.invalid.items() if k != "name"}
    if found.first_name.casefold() == held.first_name.casefold():  # "Bob", then "Bob" again
        nameless = msgspec.structs.replace(found, first_name=None)
        return Findings(nameless, {**invalid, "name": Reason("I need your last name too")})
    surname = msgspec.structs.replace(found, first_name=None, last_name=found.first_name)
    return Findings(surname, invalid)


def _next_missing(state: SessionState) -> Field | None:
    return next(
        (
            f
            for f in CONTACT_ORDER
            if not state.contact.has(f) and not (f == "email" and state.without_email)
        ),
        None,
    )


_NO_EMAIL = re.compile(
    r"\b(?:don['’]?t|do\s+not|dont|doesn['’]?t|no)\s+(?:have|use|got)\b"
    r"|\bno\s+(?:tengo|uso|cuento\s+con|manejo)\b"
    r"|\bno\s+(?:e-?mail|correo)\b"
    r"|^\W*(?:none|nope|n/?a|ninguno|no)\W*$",
    re.IGNORECASE,
)
"""A visitor without an email address, at the email step: "I don't have email", "no tengo
correo", "no email", "none". Before, the intake asked again for ever and the lead was lost."""


_MATTER_CORRECTION = re.compile(
    r"\b(?:actually|really|i\s+mean|i\s+meant|sorry|not\s+(?:an?|about|the|for)|it['’]?s\s+not|"
    r"wrong|en\s+realidad|quise\s+decir|perd[oó]n|no\s+es|m[aá]s\s+bien|equivoc)",
    re.IGNORECASE,
)
"""Words that say the visitor corrects what the matter is (`Conversation._a_different_matter`)."""
_STARTING_OVER = re.compile(
    r"\b(?:start(?:ing)?\s+(?:over|again|from\s+scratch)|restart|begin\s+again|"
    r"(?:empezar|comenzar|iniciar|empecemos|comencemos)\s+(?:de\s+nuevo|otra\s+vez|desde\s+cero)|"
    r"reiniciar|volver\s+a\s+empezar)\b",
    re.IGNORECASE,
)
MAX_START_OVER_WORDS = 8
"""A request to start over is a short message ("can we start over?", "quiero empezar de
nuevo"); a long one that mentions it ("my employer made me start over on probation") is not."""


_KEPT_ON_START_OVER = frozenset(
    {"id", "created_at", "updated_at", "turns", "lead_id", "language", "language_set",
     "language_words", "language_asked"}
)  # fmt: skip
"""What a conversation keeps when the visitor starts over: who it is and in which language;
everything it gathered (a field added later included) goes back to its first value."""


def _start_over(state: SessionState) -> None:
    """Forgets what the conversation gathered: a visitor who asked to start over describes the
    matter again from the beginning."""
    fresh = SessionState(id=state.id, created_at=state.created_at, updated_at=state.updated_at)
    for field in msgspec.structs.fields(SessionState):
        if field.name not in _KEPT_ON_START_OVER:
            setattr(state, field.name, getattr(fresh, field.name))


def _other_detail_changed(before: ContactDetails, after: ContactDetails, asked: Field) -> bool:
    """Whether a detail other than the one asked for changed ("sorry, my number is ..." at the
    email step)."""
    names = {"name": ("first_name", "last_name")}.get(asked, (asked,))
    return any(
        getattr(before, field) != getattr(after, field)
        for field in ("first_name", "last_name", "phone", "email", "zip")
        if field not in names
    )


def _has_no_email(message: str) -> bool:
    return "@" not in message and bool(_NO_EMAIL.search(message))


class Conversation:
    def __init__(
        self,
        sessions: Sessions,
        detector: CategoryDetector,
        leads: LeadSink,
        metrics: Metrics,
        *,
        replies: Replies,
        languages: LanguageDetector,
    ) -> None:
        self._sessions = sessions
        self._detector = detector
        self._leads = leads
        self._wording = Wording(replies)
        self._replies = replies
        self._languages = languages
        self._metrics = metrics

    def elsewhere(self, sessions: Sessions, leads: LeadSink) -> Conversation:
        """The same conversation logic over other session and lead stores (a replay's)."""
        return Conversation(sessions, self._detector, leads, self._metrics,
                            replies=self._replies, languages=self._languages)  # fmt: skip

    async def resume(self, *candidate_ids: str | None) -> SessionState:
        """The first candidate id that names a live session, else a fresh session (new id)."""
        for session_id in self.candidates(*candidate_ids):
            state = await self._sessions.load(session_id)
            if state is not None:
                return state
        return self._sessions.new()

    @staticmethod
    def candidates(*candidate_ids: str | None) -> list[str]:
        """The well-formed ids, once each, in order of preference."""
        return list(dict.fromkeys(i for i in candidate_ids if is_session_id(i)))  # type: ignore[misc]

    def session_key(self, session_id: str) -> str:
        return self._sessions.key(session_id)

    def resume_read(self, read: Iterable[tuple[str, bytes | str | None]]) -> SessionState:
        """`resume`, from sessions already read (id, raw value) in a round trip shared with
        other work: the first that is live, else a fresh session."""
        for session_id, raw in read:
            state = self._sessions.decode(session_id, raw)
            if state is not None:
                return state
        return self._sessions.new()

    async def turn(self, state: SessionState, message: str) -> ChatReply:
        state.turns += 1
        reply = self._starting_over(state, message) or await self._advance(state, message)
        await self._sessions.save(state)
        self._metrics.turns.labels(step=state.step).inc()
        collected: list[str] = [f for f in CONTACT_ORDER if state.contact.has(f)]
        return ChatReply(state.id, reply, state.category, state.step, state.done, collected)

    def _starting_over(self, state: SessionState, message: str) -> str | None:
        """A visitor who asks to start over before the lead is queued ("can we start over?",
        "quiero empezar de nuevo") starts from the description again; else None."""
        if state.done or not _STARTING_OVER.search(message):
            return None
        if len(_WORD.findall(message)) > MAX_START_OVER_WORDS:
            return None
        self._follow_language(state, message, Findings(ContactDetails(), {}))
        _start_over(state)
        return self._wording.say(state, START_OVER)

    async def _advance(self, state: SessionState, message: str) -> str:
        if state.done:
            return await self._after_the_end(state, message)
        expecting = next((f for f in CONTACT_ORDER if f == state.step), None)
        before, category_before = state.contact, state.category
        findings = extract(
            message,
            expecting,
            bare_name=state.step == "confirm",
            bare_zip=state.step == "confirm",
            weak_cues=not state.contact.has("name"),
            trusted_email=state.doubted_email,
            held_first=state.contact.first_name,
        )
        state.doubted_email = findings.doubted_email or state.doubted_email
        findings = _taking_the_suggestion(state, message, findings)
        if expecting == "name":
            findings = self._not_a_matter(message, _completing_the_name(state.contact, findings))
        said: list[str] = []
        at_the_read_back = state.step == "confirm"
        if (expecting or at_the_read_back) and (
            await self._a_matter_at_last(state, message)
            or await self._a_different_matter(state, message)
        ):
            if not at_the_read_back:  # the read-back names the practice area anyway
                said.append(self._wording.acknowledge(state))  # "ok fine. workers comp, fell..."
            findings = Findings(
                msgspec.structs.replace(findings.found, first_name=None, last_name=None), {}
            )
        named = await self._answered_with_a_name(state, message, findings)
        self._follow_language(state, message, named or findings)
        if named is not None:
            findings = named
            message = ""  # a name, not part of the description sent with the lead
        state.contact = merge(
            state.contact, findings.found, first_name_labelled=findings.first_name_labelled
        )
        if state.step == "confirm":
            return await self._confirm(
                state,
                message,
                changed=state.contact != before or state.category != category_before,
                invalid=findings.invalid,
            )
        if state.category is None:
            if not await self._detect(state, message):
                state.step = "describe"
                return self._wording.say(state, TELL_ME_MORE)
            said.append(self._wording.acknowledge(state))
        half_a_name = state.contact.first_name or state.contact.last_name
        if expecting == "name" and half_a_name and not state.contact.has("name"):
            return " ".join([*said, self._wording.half_a_name(state)])  # "Mr. Lee", "its maria"
        if expecting and (
            asked_again := self._ask_again(state, expecting, message, findings, said, before)
        ):
            return asked_again
        missing = _next_missing(state)
        if missing != "name" and state.contact.first_name and expecting == "name":
            said.append(self._wording.thanks(state))
        if missing is None:
            state.step = "confirm"
            return " ".join([*said, self._wording.read_back(state)])
        state.step = missing
        return " ".join([*said, self._wording.ask(state, missing)])

    def _ask_again(
        self,
        state: SessionState,
        expecting: Field,
        message: str,
        findings: Findings,
        said: list[str],
        before: ContactDetails,
    ) -> str | None:
        """The re-ask when the detail asked for is still missing (with why it is asked, when the
        visitor asks why), or None to go on; a visitor with no email address goes on without."""
        if state.contact.has(expecting):
            return None
        if expecting == "email" and _has_no_email(message):
            state.without_email = True
            said.append(self._wording.say(state, WITHOUT_EMAIL))
            return None
        if expecting not in findings.invalid:
            return None
        if findings.invalid[expecting] == NOT_FOUND[expecting] and _other_detail_changed(
            before, state.contact, expecting
        ):  # "sorry my number is 480-239-1125" at the email step: taken, then the email again
            return " ".join(
                [*said, self._wording.say(state, UPDATED), self._wording.ask(state, expecting)]
            )
        if _asks_why(message):  # "why do you need my name?"
            return " ".join([self._wording.why_we_ask(state), self._wording.ask(state, expecting)])
        return self._wording.re_ask(state, findings.invalid[expecting])

    async def _a_different_matter(self, state: SessionState, message: str) -> bool:
        """A visitor who corrects what the matter is ("actually my problem is that I got
        fired", "en realidad es por un divorcio"): the correction alone is detected again, and
        a different practice area replaces the one held (the description keeps both)."""
        if state.category in (None, GENERAL) or not _MATTER_CORRECTION.search(message):
            return False
        if len(_WORD.findall(message)) < MIN_MATTER_WORDS:
            return False
        if not self._detector.names_a_matter(message):
            return False
        detection = await self._detector.detect(message)
        if detection.category in (GENERAL, state.category):
            return False
        state.description = f"{state.description}\n{message}".strip()[:4000]
        state.category = detection.category
        state.confidence = detection.confidence
        state.detection_method = detection.method
        return True

    async def _a_matter_at_last(self, state: SessionState, message: str) -> bool:
        """A conversation that went on as `general` learns its practice area when the visitor
        names it later ("ok fine. workers comp, fell off a ladder"): the message joins the
        description and the category is detected again. Three words at least, read by the
        offline classifier first (a name alone never is)."""
        if state.category != GENERAL or len(_WORD.findall(message)) < MIN_MATTER_WORDS:
            return False
        if not self._detector.names_a_matter(message):
            return False
        state.category = None
        return await self._detect(state, message)

    def _follow_language(self, state: SessionState, message: str, findings: Findings) -> None:
        """The conversation's language follows what the visitor writes: the first message
        that says sets it, and a later one of two words or more switches it. The visitor's
        own name and addresses never count ("José García" in an English conversation,
        "carmen@gmail.com" in a Spanish one)."""
        asked = _asked_for(message)
        if asked is not None:
            state.language = state.language_asked = asked
            state.language_set = True
            return
        found, held = findings.found, state.contact
        names = (found.first_name, found.last_name, held.first_name, held.last_name)
        name_words = {w.casefold() for name in names if name for w in _WORD.findall(name)}
        words = [
            w for w in _common_words(_ADDRESS.sub(" ", message)) if w.casefold() not in name_words
        ]
        if not words or (len(words) < MIN_WORDS_TO_SWITCH and state.language_set):
            return
        language = self._languages.language_of(" ".join(words))
        if language is not None:
            state.language = language
            state.language_set = True
            state.language_words[language] = state.language_words.get(language, 0) + len(words)

    def _not_a_matter(self, message: str, findings: Findings) -> Findings:
        """Asked for a name, a visitor who answers with nothing but what happened ("Car
        Accident", "Dog Bite") gave no name; the re-ask says how to give a name that happens to
        read so ("my name is Joy Trust": a cue always counts)."""
        found = findings.found
        name = f"{found.first_name or ''} {found.last_name or ''}".split()
        answer = _WORD.findall(message)
        if not name or [w.casefold() for w in answer] != [w.casefold() for w in name]:
            return findings
        if not self._detector.names_a_matter(message):
            return findings
        without_name = msgspec.structs.replace(found, first_name=None, last_name=None)
        return Findings(without_name, {**findings.invalid, "name": NOT_A_NAME})

    async def _answered_with_a_name(
        self, state: SessionState, message: str, findings: Findings
    ) -> Findings | None:
        """Asked to tell more, the visitor sent only their name ("jorge alberto mendoza"): what
        the message gives read as a name, when it is nothing but one and says nothing of a
        practice area; else None."""
        if state.step != "describe" or not state.describe_asks or findings.found.has("name"):
            return None
        named = extract(message, bare_name=True, any_case=True)
        if not named.found.has("name"):
            return None
        return named if (await self._detector.detect(message)).category == GENERAL else None

    async def _after_the_end(self, state: SessionState, message: str) -> str:
        """A message after the lead was queued: a changed detail ("sorry, my number is
        555-201-7799") goes into the lead while it still waits for a worker; once claimed, the
        visitor is told it could not be changed. Anything else gets the closing again."""
        findings = extract(
            message,
            bare_name=True,
            bare_zip=True,
            weak_cues=False,
            trusted_email=state.doubted_email,
            held_first=state.contact.first_name,
        )
        state.doubted_email = findings.doubted_email or state.doubted_email
        corrected = merge(
            state.contact, findings.found, first_name_labelled=findings.first_name_labelled
        )
        if corrected == state.contact or not state.lead_id:
            return self._wording.closing(state, again=True)
        changes = {
            field: value
            for field, value in msgspec.structs.asdict(corrected).items()
            if value and value != getattr(state.contact, field)
        }
        if not await self._leads.amend(state.lead_id, changes):
            self._metrics.lead_corrections.labels(outcome="too_late").inc()
            return self._wording.say(state, TOO_LATE)
        self._metrics.lead_corrections.labels(outcome="applied").inc()
        state.contact = corrected
        return self._wording.updated_after_the_end(state)

    async def _confirm(
        self, state: SessionState, message: str, *, changed: bool, invalid: dict[str, Reason]
    ) -> str:
        """The read-back step: a correction reads back again, a yes queues the lead."""
        if changed:
            return self._wording.updated(state)
        if invalid:
            field, reason = next(iter(invalid.items()))
            return self._wording.re_ask(state, reason, field)  # type: ignore[arg-type]
        if _is_yes(message):
            await self._queue_lead(state)
            return self._wording.closing(state, again=False)
        return self._wording.say(state, NOT_YES)

    async def _detect(self, state: SessionState, message: str) -> bool:
        """Sets the category; False while more description is worth asking for."""
        state.description = f"{state.description}\n{message}".strip()[:4000]
        detection = await self._detector.detect(state.description)
        if detection.category == GENERAL and state.describe_asks < MAX_DESCRIBE_ASKS:
            state.describe_asks += 1
            return False
        state.category = detection.category
        state.confidence = detection.confidence
        state.detection_method = detection.method
        return True

    async def _queue_lead(self, state: SessionState) -> None:
        contact = state.contact
        lead = Lead(
            idempotency_key=state.id,
            first_name=contact.first_name or "",
            last_name=contact.last_name or "",
            email=contact.email or "",
            phone=contact.phone or "",
            zip=contact.zip or "",
            category=state.category or GENERAL,
            description=state.description,
            session_hash=session_hash(state.id),
            language=state.lead_language,
        )
        state.lead_id = await self._leads.enqueue(lead)
        state.step = "done"
        self._metrics.leads_enqueued.inc()
