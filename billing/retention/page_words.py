"""What the cancel page says each choice does, to the payments, the server and its data: one place, so the offer,
the confirmation and the "done" page say the same thing."""

from datetime import UTC, datetime

from django.utils import timezone

from .changes import months_later
from .models import CancelSession, OfferKind


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def _day(moment: datetime | None) -> str:
    return f"{moment:%d %B %Y}" if moment else "the end of the current period"


def _pause_resumes_at(session: CancelSession) -> datetime:
    change = session.change
    if change is not None and change.params.get("pause_collection"):
        return datetime.fromtimestamp(change.params["pause_collection"]["resumes_at"], tz=UTC)
    return months_later(timezone.now(), session.offer_terms["months"])


def choice_words(session: CancelSession, outcome: str) -> dict:
    """{title, lines, button} for accepting the session's offer ("accepted") or canceling ("canceled")."""
    subscription = session.subscription
    if outcome == "canceled":
        end = _day(subscription.current_period_end)
        return {
            "title": "Cancel at the end of the period",
            "button": f"Cancel my subscription on {end}",
            "lines": [
                f"Your subscription ends on {end}. You will not be charged again.",
                f"Until {end} your server keeps running as it does now.",
                f"On {end} your server is switched off. Its files and settings are kept, not deleted: subscribe "
                "again and it comes back as you left it.",
            ],
        }
    terms = session.offer_terms
    if session.offer_kind == OfferKind.PAUSE:
        months, resumes = terms["months"], _day(_pause_resumes_at(session))
        return {
            "title": f"Pause for {months} month{'s' if months != 1 else ''} instead",
            "button": f"Pause until {resumes}",
            "lines": [
                f"Your payments stop until {resumes}: no invoice is charged during the pause.",
                "Your server is suspended during the pause. Its files and settings are kept, not deleted.",
                f"On {resumes} your payments start again and your server is started again, as you left it.",
                "You can still cancel later.",
            ],
        }
    amount, currency = subscription.amount, subscription.currency
    if session.offer_kind == OfferKind.DISCOUNT:
        percent, months = terms["percent_off"], terms["months"]
        lower = money(round(amount * (100 - percent) / 100), currency)
        return {
            "title": f"{percent}% off for {months} month{'s' if months != 1 else ''} instead",
            "button": f"Keep my server with {percent}% off",
            "lines": [
                f"Your invoices in the next {months} month{'s' if months != 1 else ''} are {percent}% lower: "
                f"{lower} instead of {money(amount, currency)} per {subscription.interval or 'period'}.",
                "Your server keeps running as it does now; nothing changes on it or its data.",
                "After that your subscription continues at its usual price.",
            ],
        }
    plan, new_amount = terms["plan_name"], money(terms["amount"], currency)
    return {
        "title": f"Move to {plan} instead",
        "button": f"Move to {plan}",
        "lines": [
            f"Your subscription moves to {plan} at {new_amount} per {subscription.interval or 'period'} instead of "
            f"{money(amount, currency)}, from your next invoice (nothing is charged or refunded for this period).",
            f"From now on your server has the resources of {plan}. Its files and settings are kept.",
        ],
    }
