"""What the bot says, in the conversation's language: every reply template, marked for the
catalogs (`N_`), and how details are read back. The conversation decides what to say; this
module only phrases it (`newchat._replies` holds the translations)."""

from __future__ import annotations

from newchat._categories import GENERAL, LABELS
from newchat._msgids import N_
from newchat._replies import Replies
from newchat._sessions import SessionState
from newchat.contact import Field, Reason

_ASK: dict[Field, str] = {
    "name": N_("May I have your full name (first and last)?"),
    "phone": N_("What's the best phone number to reach you?"),
    "email": N_("And your email address?"),
    "zip": N_("Last one: what's your ZIP code?"),
}
_FIELD: dict[str, str] = {
    "name": N_("name"),
    "phone": N_("phone number"),
    "email": N_("email address"),
    "zip": N_("ZIP code"),
}
TELL_ME_MORE = N_(
    "Thanks for reaching out. Could you tell me a little more about what happened, so I can "
    "connect you with the right attorney?"
)
NOT_A_NAME = Reason(
    'that reads like what happened rather than a name (if it is your name, write "my name is" '
    "first)"
)
TOO_LATE = N_(
    "I'm sorry, your details have already gone to our attorneys, so I can't change them here. "
    "Please give the attorney the new details when they contact you."
)
START_OVER = N_("Of course, let's start over. What happened, in a few words?")
UPDATED = N_("Thanks, I've updated that.")
WITHOUT_EMAIL = N_("No problem: our attorney will call you.")
NOT_YES = N_(
    "Please reply yes if these details are right, or tell me what to change (for example, "
    '"my phone is 555-201-7788").'
)


def _phone_for_reading(phone: str) -> str:
    return f"({phone[:3]}) {phone[3:6]}-{phone[6:]}"


class Wording:
    def __init__(self, replies: Replies) -> None:
        self._replies = replies

    def say(self, state: SessionState, template: str, **params: str) -> str:
        return self._replies.say(state.language, template, **params)

    def ask(self, state: SessionState, field: Field) -> str:
        return self.say(state, _ASK[field])

    def area(self, state: SessionState) -> str:
        return self.say(state, LABELS[state.category or GENERAL])

    def acknowledge(self, state: SessionState) -> str:
        if (state.category or GENERAL) == GENERAL:
            return self.say(state, N_("Thank you. An attorney can review your situation."))
        return self.say(
            state,
            N_("I'm sorry you're dealing with this. That sounds like {area}, and we can help."),
            area=self.area(state),
        )

    def why_we_ask(self, state: SessionState) -> str:
        return self.say(
            state,
            N_(
                "Our attorney needs it to contact you about your case; your details go only to "
                "our attorneys."
            ),
        )

    def thanks(self, state: SessionState) -> str:
        name = (state.contact.first_name or "").rstrip(".")
        return self.say(state, N_("Thanks, {name}."), name=name)

    def half_a_name(self, state: SessionState) -> str:
        """Asks for the part of the name still missing ("Mr. Lee": the first name)."""
        if state.contact.first_name:
            return self.say(
                state,
                N_("Thanks, {name}. What's your last name?"),
                name=state.contact.first_name,
            )
        return self.say(state, N_("Thanks. What's your first name?"))

    def re_ask(self, state: SessionState, reason: Reason, field: Field | None = None) -> str:
        """A re-ask that says what was wrong. A reason that is a whole sentence of its own (it
        ends with a full stop: "Did you mean ann@gmail.com? ... send it again.") stands alone."""
        said = self.say(state, reason.template, **reason.params)
        if reason.template.endswith("."):
            return said
        if field is None:
            return self.say(state, N_("Sorry, {reason}. Could you enter it again?"), reason=said)
        return self.say(
            state,
            N_("Sorry, {reason}. Could you give me your {field} again?"),
            reason=said,
            field=self.say(state, _FIELD[field]),
        )

    def summary(self, state: SessionState) -> str:
        contact = state.contact
        details = {
            "first": contact.first_name or "",
            "last": contact.last_name or "",
            "phone": _phone_for_reading(contact.phone or ""),
            "zip": contact.zip or "",
            "area": self.area(state),
        }
        if state.without_email and not contact.email:
            return self.say(
                state,
                N_("{first} {last}, phone {phone}, no email, ZIP {zip}, practice area: {area}."),
                **details,
            )
        return self.say(
            state,
            N_("{first} {last}, phone {phone}, email {email}, ZIP {zip}, practice area: {area}."),
            email=contact.email or "",
            **details,
        )

    def read_back(self, state: SessionState) -> str:
        return self.say(
            state,
            N_(
                "Let me read that back: {summary} Is that all correct? Reply yes to confirm, "
                "or tell me what to change."
            ),
            summary=self.summary(state),
        )

    def updated(self, state: SessionState) -> str:
        return self.say(
            state, N_("Thanks, I've updated that. {read_back}"), read_back=self.read_back(state)
        )

    def updated_after_the_end(self, state: SessionState) -> str:
        return self.say(
            state,
            N_(
                "Thanks, I've updated your details: {summary} An attorney will contact you shortly."
            ),
            summary=self.summary(state),
        )

    def closing(self, state: SessionState, *, again: bool) -> str:
        name, area = state.contact.first_name or "", self.area(state)
        if again:
            return self.say(
                state,
                N_(
                    "Thanks, {name}, we already have your details. An attorney who handles "
                    "{area} cases will contact you shortly."
                ),
                name=name,
                area=area,
            )
        return self.say(
            state,
            N_("Thank you, {name}. An attorney who handles {area} cases will contact you shortly."),
            name=name,
            area=area,
        )
