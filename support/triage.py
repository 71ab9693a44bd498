"""Keyword triage of "other" tickets: a suggestion with its reason, never an override of the customer's choice."""

import re
from dataclasses import dataclass

from .models import TicketCategory

# Words that point at a category, matched as whole words (and simple plurals) in the subject and description.
KEYWORDS: dict[str, tuple[str, ...]] = {
    TicketCategory.BILLING: (
        "refund", "invoice", "charge", "charged", "payment", "paid", "billing", "subscription", "card", "receipt",
        "cancel", "price", "vat",
    ),
    TicketCategory.SETUP: (
        "install", "installation", "mod", "mods", "modpack", "config", "configure", "configuration", "setup",
        "plugin", "whitelist", "world", "upload",
    ),
    TicketCategory.TECHNICAL: (
        "crash", "crashes", "crashing", "lag", "lagging", "error", "down", "offline", "timeout", "bug", "broken",
        "freeze", "disconnect", "tps",
    ),
    TicketCategory.PURCHASE: ("buy", "purchase", "plan", "upgrade", "trial", "order", "checkout", "pricing"),
}  # fmt: skip

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Suggestion:
    category: str  # "" when nothing matched
    reason: str


def triage(*, subject: str, description: str) -> Suggestion:
    """The category whose keywords appear most often (subject words count double); ties keep KEYWORDS' order."""
    words = _WORD.findall(subject.lower()) * 2 + _WORD.findall(description.lower())
    best, best_hits, best_score = "", [], 0
    for category, keywords in KEYWORDS.items():
        hits = [w for w in words if w in keywords]
        if len(hits) > best_score:
            best, best_hits, best_score = category, hits, len(hits)
    if not best:
        return Suggestion("", "no category keywords found")
    matched = ", ".join(dict.fromkeys(best_hits))
    return Suggestion(str(best), f"keywords: {matched}"[:200])
