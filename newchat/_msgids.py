"""The marker for reply templates (gettext's conventional `N_`): Babel extracts the strings it
wraps into the catalog (`make messages`); `newchat._replies.Replies.say` translates them when
used. Kept apart so modules with templates (categories, wording) import nothing heavy."""


def N_(template: str) -> str:  # noqa: N802 - gettext's conventional name for a deferred msgid
    """`template`, unchanged: marked for extraction, translated later."""
    return template
