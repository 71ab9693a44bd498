"""The admin's front page: what happened in the last 7, 30 or 90 days, composed from the selectors of the apps that
own the data. Each section shows only to staff who may see the records behind it (config/roles.py), and the number of
queries is the same whatever the amount of data (tests/backoffice/test_dashboard.py)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from automations import selectors as automations_selectors
from billing import selectors as billing_selectors
from billing.retention import selectors as retention_selectors
from core.charts import daily_lines
from customers import funnel as customers_funnel
from customers import list_filters
from customers import selectors as customers_selectors
from customers.lifecycle import Stage
from integrations import alerts as integration_alerts
from support import selectors as support_selectors

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


def period_from(value: str | None) -> int:
    """The period in days from the query string: one of PERIODS, else the default."""
    return int(value) if value in {str(days) for days in PERIODS} else DEFAULT_PERIOD


@dataclass
class Money:
    currency: str
    amount: int  # minor units

    def __str__(self) -> str:
        return f"{self.amount / 100:,.2f} {self.currency}"


def dashboard_build(*, user, days: int, now: datetime) -> dict:
    since = customers_funnel.period_start(days=days, now=now)
    board: dict = {"days": days, "periods": PERIODS, "since": since, "now": now}
    if user.has_perm("support.view_ticket") or user.has_perm("integrations.view_workflowrun"):
        board["alerts"] = integration_alerts.alerts_active()  # a Discord configuration staff must fix
    if user.has_perm("customers.view_customer"):
        board["customers"] = _customers(since=since, now=now)
    if user.has_perm("billing.view_subscription"):
        board["at_risk"] = billing_selectors.subscriptions_at_risk()
        board["churn"] = billing_selectors.churn_reasons(since=since, until=now)
        board["recovered"] = dunning_recovered(since=since, until=now)
    if user.has_perm("billing.view_cancelsession"):
        board["retention"] = retention_selectors.retention_board(since=since, until=now)
    if user.has_perm("support.view_ticket"):
        board["tickets"] = support_selectors.tickets_open_summary()
    if user.has_perm("automations.view_emailqueueitem"):
        board["queue"] = automations_selectors.queue_health(now=now, since=since)
        analytics = automations_selectors.email_analytics(since=since, until=now)
        board["engagement"] = _engagement(analytics.total)
        board["engagement_chart"] = daily_lines(analytics.days)
        # The analytics page needs rules as well as emails (automations/admin/analytics.py): linked for who may open it.
        board["analytics_link"] = user.has_perms(["automations.view_automationrule", "automations.view_emailqueueitem"])
    return board


def _customers(*, since: datetime, now: datetime) -> dict:
    funnel, moves = customers_funnel.funnel_rows(since=since, until=now)
    conversions = [_conversion(row, since=since, now=now) for row in moves.conversions()]
    created = customers_selectors.customers_created_by_day(since=since, until=now)
    days = [since.date() + timedelta(days=n) for n in range((now.astimezone(UTC).date() - since.date()).days + 1)]
    return {
        "new": sum(created.values()),
        "churned": sum(moves.churned.values()),
        "new_url": list_filters.created_url(since=since, until=now),
        "churned_url": list_filters.entered_stage_url(
            stage=Stage.CHURNED, since=since, until=now, not_from_stage=Stage.WIN_BACK
        ),
        "funnel": funnel,
        "funnel_widest": max([row["now"] for row in funnel] + [1]),
        "conversions": conversions,
        "chart": daily_lines(
            [(day, created.get(day, 0), moves.churned.get(day, 0)) for day in days], series=("new", "churned")
        ),
    }


def _conversion(row: dict, *, since: datetime, now: datetime) -> dict:
    """One stage-to-stage conversion. A move that takes time (Onboarding to Active: up to 30 days) is measured only
    over the customers who entered long enough ago to have made it; when nobody in the period did, the row says the
    conversion cannot be measured yet instead of showing 0%."""
    labels = dict(Stage.choices)
    shown = {
        "from": labels[row["stage"]],
        "to": " or ".join(labels[stage] for stage in row["next_stages"]),
        "entered": row["entered"],
        "moved_on": row["moved_on"],
        "cohort_note": "",
        "too_early": "",
    }
    takes = customers_funnel.CONVERSION_TAKES.get(row["stage"])
    entered, moved_on = row["entered"], row["moved_on"]
    if takes is not None:
        last_day = (now - takes).astimezone(UTC).date()
        if last_day < since.astimezone(UTC).date():
            shown["too_early"] = f"Not measurable yet: it takes up to {takes.days} days"
            shown["percent"] = None
            return shown
        entered, moved_on = customers_funnel.conversion_by(stage=row["stage"], since=since, last_day=last_day)
        shown["cohort_note"] = f"of the {entered} who entered by {last_day:%Y-%m-%d} (it takes up to {takes.days} days)"
    shown["percent"] = round(100 * moved_on / entered) if entered else None
    return shown


def _engagement(total) -> dict:
    """Sent, delivered, clicked and opened, each with its rate (clicks and opens against delivered)."""
    figures = {}
    for name in ("sent", "delivered", "clicked", "opened", "human_opened"):
        rate = total.rate(name) if name != "sent" else None
        figures[name] = {"count": getattr(total, name), "percent": round(100 * rate, 1) if rate is not None else None}
    return figures


def dunning_recovered(*, since: datetime, until: datetime) -> dict:
    """Invoices recovered in the period after a dunning email: they failed, a dunning rule's email went to the
    customer between the first failure and the payment (for the same subscription when the enrollment names one), and
    they were then paid; decided when the payment was recorded (billing/recoveries.py). The amounts are what Stripe
    last asked for, summed per currency."""
    summary = billing_selectors.payment_recoveries_summary(since=since, until=until)
    return {**summary, "amounts": [Money(currency=currency, amount=amount) for currency, amount in summary["amounts"]]}
