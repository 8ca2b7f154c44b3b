"""The closed set of practice areas (category slugs) shared by both backends."""

from __future__ import annotations

from typing import Literal, get_args

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

LABELS: dict[Category, str] = {
    "personal_injury": "personal injury",
    "workers_comp": "workers' compensation",
    "medical_malpractice": "medical malpractice",
    "family": "family law",
    "criminal": "criminal defense",
    "dui": "DUI / DWI",
    "immigration": "immigration",
    "bankruptcy": "bankruptcy and debt",
    "employment": "employment law",
    "estate": "wills, trusts and probate",
    "real_estate": "real estate and landlord-tenant",
    "disability": "disability benefits",
    "general": "general legal help",
}
