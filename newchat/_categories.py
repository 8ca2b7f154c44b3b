"""The closed set of practice areas (category slugs) shared by both backends."""

from __future__ import annotations

from typing import Literal, get_args

from newchat._msgids import N_

Category = Literal[
    "personal_injury",
    "workers_comp",
    "medical_malpractice",
    "family",
    "criminal",
    "dui",
    "immigration",
    "bankruptcy",
    "employment",
    "estate",
    "real_estate",
    "disability",
    "general",
]

CATEGORIES: tuple[Category, ...] = get_args(Category)
GENERAL: Category = "general"

LABELS: dict[Category, str] = {  # English; in the visitor's language through newchat._replies
    "personal_injury": N_("personal injury"),
    "workers_comp": N_("workers' compensation"),
    "medical_malpractice": N_("medical malpractice"),
    "family": N_("family law"),
    "criminal": N_("criminal defense"),
    "dui": N_("DUI / DWI"),
    "immigration": N_("immigration"),
    "bankruptcy": N_("bankruptcy and debt"),
    "employment": N_("employment law"),
    "estate": N_("wills, trusts and probate"),
    "real_estate": N_("real estate and landlord-tenant"),
    "disability": N_("disability benefits"),
    "general": N_("general legal help"),
}
