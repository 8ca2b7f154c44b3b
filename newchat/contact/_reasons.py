"""Why a detail could not be used, in English, with what a reply catalog needs to say it in the
visitor's language: the template (the catalog's msgid, extracted by Babel with the `Reason`
keyword) and its parameters."""

from __future__ import annotations


class Reason(str):
    """The English reason (`str(reason)`), carrying `template` and `params` for translation:
    `Reason("{zip} isn't a ZIP code in use", zip="99999")`."""

    template: str
    params: dict[str, str]

    def __new__(cls, template: str, **params: object) -> Reason:
        reason = super().__new__(cls, template.format(**params))
        reason.template = template
        reason.params = {k: str(v) for k, v in params.items()}
        return reason
