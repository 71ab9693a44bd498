"""Reads for other apps, the admin and the API, with their joins already applied."""

from collections import defaultdict
from datetime import datetime

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Sum, Value, When
from django.utils.dateparse import parse_datetime
from djstripe import models as djstripe_models

from customers.models import Customer, TimelineEvent

from .models import (
    AT_RISK,
    CANCELLATION_FEEDBACK,
    CANCELLATION_REASONS,
    CURRENT_STATUSES,
    FAILING_FIRST,
    FAILING_STATUSES,
    CardExpiryNotice,
    PaymentFailure,
    PaymentRecovery,
    StripeEventProcessing,
    Subscription,
    SubscriptionStatus,
)
from .models import ENDED_STATUSES as ENDED_STATUSES  # for apps that decide by a subscription's status


def subscription_current_for_customer(*, customer: Customer) -> Subscription | None:
    """The customer's most relevant ModReady subscription: an active, trialing or past-due one first (the newest),
    else the latest of any status. None when the customer never subscribed."""
    return (
        Subscription.objects.filter(customer=customer)
        .annotate(
            current_rank=Case(
                When(status__in=CURRENT_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("current_rank", "-stripe_created", "-id")
        .first()
    )


def subscriptions_current_for_customers(*, customer_ids: set[int]) -> dict[int, Subscription]:
    """`subscription_current_for_customer` for many customers in one query (the email queue renders 100 at once)."""
    current: dict[int, Subscription] = {}
    rows = (
        Subscription.objects.filter(customer_id__in=customer_ids)
        .annotate(
            current_rank=Case(
                When(status__in=CURRENT_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("customer_id", "current_rank", "-stripe_created", "-id")
    )
    for subscription in rows:
        current.setdefault(subscription.customer_id, subscription)
    return current


def subscription_list_for_customer(*, customer: Customer) -> QuerySet[Subscription]:
    return Subscription.objects.filter(customer=customer).order_by("-stripe_created", "-id")


def subscription_get_by_stripe_id(*, stripe_subscription_id: str) -> Subscription | None:
    return Subscription.objects.select_related("customer").filter(stripe_subscription_id=stripe_subscription_id).first()


def subscription_get_for_update(*, stripe_subscription_id: str) -> Subscription | None:
    """The subscription, row-locked until the caller's transaction ends: for a decision that must not race a status
    change being applied (billing.services locks the same row to change it)."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .filter(stripe_subscription_id=stripe_subscription_id)
        .first()
    )


def subscriptions_get_for_update(*, stripe_subscription_ids: list[str]) -> dict[str, Subscription]:
    """subscription_get_for_update for many at once, by Stripe id. Locked in id order, so two callers with
    overlapping sets cannot deadlock on them."""
    if not stripe_subscription_ids:
        return {}
    subscriptions = (
        Subscription.objects.select_for_update(of=("self",))
        .filter(stripe_subscription_id__in=set(stripe_subscription_ids))
        .order_by("pk")
    )
    return {subscription.stripe_subscription_id: subscription for subscription in subscriptions}


def customer_has_other_current_subscription(*, customer: Customer, exclude_stripe_subscription_id: str) -> bool:
    return (
        Subscription.objects.filter(customer=customer, status__in=CURRENT_STATUSES)
        .exclude(stripe_subscription_id=exclude_stripe_subscription_id)
        .exists()
    )


def stripe_events_due(*, now, limit: int = 200) -> list[str]:
    """Event ids whose processing failed and whose backoff is over, or that a lost enqueue left pending."""
    return list(
        StripeEventProcessing.objects.filter(status__in=["pending", "failed"], next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("event_id", flat=True)[:limit]
    )


def subscription_list() -> QuerySet[Subscription]:
    """Every CRM subscription with its customer joined (the API's list)."""
    return Subscription.objects.select_related("customer")


def subscription_exists_filter(
    *, customer, product_id: str | None = None, statuses=None, product_ids=None, price_ids=None
) -> QuerySet[Subscription]:
    """Subscriptions of `customer` (a customer or an OuterRef), for `Exists(...)` filters on customers; with
    `customer=None`, of every customer (their `customer_id`s, for an `IN` filter)."""
    queryset = Subscription.objects.all() if customer is None else Subscription.objects.filter(customer=customer)
    if product_id is not None:
        queryset = queryset.filter(product_id=product_id)
    if product_ids is not None:
        queryset = queryset.filter(product_id__in=product_ids)
    if price_ids is not None:
        queryset = queryset.filter(price_id__in=price_ids)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    return queryset


def payment_failed_filter(*, since: datetime, customer=None) -> QuerySet[TimelineEvent]:
    """The payment failures billing recorded since `since`, of `customer` (a customer or an OuterRef) or, left out,
    of every customer (timeline_payment_idx)."""
    failures = TimelineEvent.objects.filter(kind=PAYMENT_FAILED, occurred_at__gte=since)
    return failures if customer is None else failures.filter(customer=customer)


def stripe_customers_in_countries(*, countries: list[str]):
    """dj-stripe's Stripe customers whose billing address Stripe holds is in one of `countries` (ISO 3166-1 alpha-2,
    upper case, as Stripe writes them); their `id` is a CRM customer's `stripe_customer_id`.
    https://docs.stripe.com/api/customers/object#customer_object-address"""
    return djstripe_models.Customer.objects.filter(stripe_data__address__country__in=countries)


def products_known() -> list[tuple[str, str]]:
    """(Stripe product id, label) of every product the CRM knows: mirrored from Stripe, or on a subscription."""
    products = {product_id: name or product_id for product_id, name, _active in products_synced()}
    for product_id, name in Subscription.objects.values_list("product_id", "product_name").distinct():
        products.setdefault(product_id, name or product_id)
    return sorted(products.items(), key=lambda product: (product[1].lower(), product[0]))


def plans_known() -> list[tuple[str, str]]:
    """(Stripe price id, label) of every price the CRM knows: mirrored from Stripe, or on a subscription, by label."""
    plans = {
        price_id: f"{product_name or product_id} ({price_id})"
        for price_id, product_id, product_name in Subscription.objects.exclude(price_id="")
        .values_list("price_id", "product_id", "product_name")
        .distinct()
    }
    for price_id, product_name, nickname in djstripe_models.Price.objects.values_list(
        "id", "product__name", "stripe_data__nickname"
    ):
        plans.setdefault(price_id, f"{product_name or '?'}{f' {nickname}' if nickname else ''} ({price_id})")
    return sorted(plans.items(), key=lambda plan: plan[1])


def products_synced() -> list[tuple[str, str, bool | None]]:
    """(Stripe product id, name, active) of every product mirrored from Stripe (dj-stripe's Product), by name: what a
    rule's product condition offers to pick from."""
    return list(djstripe_models.Product.objects.order_by("name", "id").values_list("id", "name", "active"))


# --- the dashboard (backoffice/dashboard.py) ----------------------------------------------------------------------

PAYMENT_FAILED = "payment.failed"  # the timeline kind billing.services records for a failed invoice payment


def subscriptions_at_risk(*, limit: int = 50) -> dict:
    """Subscriptions with a failed payment (past due, unpaid) or a scheduled cancellation, failing ones first, each
    with Stripe's next retry from its latest recorded failure (the invoice's next_payment_attempt). Three queries,
    on the partial index of the few subscriptions at risk, in the list's order (subscription_at_risk_idx)."""
    at_risk = Subscription.objects.filter(AT_RISK)
    counts = at_risk.aggregate(failing=Count("id", filter=Q(status__in=FAILING_STATUSES)), total=Count("id"))
    rows = list(
        at_risk.select_related("customer")
        .annotate(failing=FAILING_FIRST)
        .order_by("failing", "current_period_end", "id")[:limit]
    )
    latest_failure: dict[str, dict] = {}
    failures = (
        TimelineEvent.objects.filter(
            customer_id__in={s.customer_id for s in rows if s.failing == 0}, kind=PAYMENT_FAILED
        )
        .order_by("-occurred_at", "-id")
        .values("payload", "occurred_at")
    )
    for failure in failures:
        latest_failure.setdefault(failure["payload"].get("subscription_id", ""), failure)
    for subscription in rows:
        failure = latest_failure.get(subscription.stripe_subscription_id) if subscription.failing == 0 else None
        payload = failure["payload"] if failure else {}
        subscription.failed_at = failure["occurred_at"] if failure else None
        subscription.next_payment_attempt = parse_datetime(payload.get("next_payment_attempt") or "")
        amount_due = payload.get("amount_due")
        currency = (payload.get("currency") or subscription.currency).upper()
        subscription.amount_due_display = f"{int(amount_due) / 100:,.2f} {currency}" if amount_due is not None else ""
    return {"failing": counts["failing"], "scheduled": counts["total"] - counts["failing"], "rows": rows}


def churn_reasons(*, since: datetime, until: datetime, comments: int = 20) -> dict:
    """Subscriptions that ended in [since, until), counted by the customer's feedback and by Stripe's reason, with
    the latest comments customers left (Stripe's cancellation_details, stored on the subscription). Two queries, on
    the index of ended subscriptions that carries both reasons (subscription_ended_idx)."""
    ended = Subscription.objects.filter(status=SubscriptionStatus.CANCELED, ended_at__gte=since, ended_at__lt=until)
    by_feedback: dict[str, int] = defaultdict(int)
    by_reason: dict[str, int] = defaultdict(int)
    for reason, feedback, n in (
        ended.values_list("cancellation_reason", "cancellation_feedback").annotate(n=Count("id")).order_by()
    ):
        by_reason[reason] += n
        by_feedback[feedback] += n
    latest = ended.exclude(cancellation_comment="").select_related("customer").order_by("-ended_at", "-id")

    def most_first(counts: dict[str, int], labels: dict[str, str]) -> list[tuple[str, int]]:
        return [(labels.get(key, key), n) for key, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    return {
        "ended": sum(by_reason.values()),
        "feedback": most_first(by_feedback, CANCELLATION_FEEDBACK),
        "reasons": most_first(by_reason, CANCELLATION_REASONS),
        "comments": list(latest[:comments]),
    }


def payment_recoveries_summary(*, since: datetime, until: datetime, latest: int = 10) -> dict:
    """Invoices whose payment failed and was then paid, recovered in [since, until) (billing/recoveries.py): how many,
    how many after a dunning email with their amounts per currency (what Stripe last asked for), and the latest of
    those. Two queries on the recovery date, whatever the number of recoveries."""
    period = PaymentRecovery.objects.filter(recovered_at__gte=since, recovered_at__lt=until)
    recovered = 0
    after_dunning = 0
    amounts: dict[str, int] = defaultdict(int)
    for currency, credited, n, amount in (
        period.values_list("currency", "after_dunning").annotate(n=Count("id"), amount=Sum("amount")).order_by()
    ):
        recovered += n
        if credited:
            after_dunning += n
            amounts[currency] += amount
    return {
        "recovered": recovered,
        "after_dunning": after_dunning,
        "amounts": sorted(amounts.items()),
        "invoices": list(period.filter(after_dunning=True).order_by("-recovered_at", "-id")[:latest]),
    }


def payment_failures_summary(*, since: datetime, until: datetime) -> dict:
    """Invoices that first failed in [since, until): how many of each decline kind (billing/declines.py) and how many
    of those were paid since; the card-expiry warnings sent in the period; and, for invoices in the dunning holdout's
    experiment (services/payment_failures.py), failed and recovered per group. Three queries."""
    failures = PaymentFailure.objects.filter(first_failed_at__gte=since, first_failed_at__lt=until)
    kinds = {
        kind: {"failed": n, "recovered": recovered}
        for kind, n, recovered in failures.values_list("decline_kind")
        .annotate(n=Count("id"), recovered=Count("id", filter=Q(recovered_at__isnull=False)))
        .order_by()
    }
    groups = {
        group: {"failed": n, "recovered": recovered}
        for group, n, recovered in failures.exclude(dunning_group="")
        .values_list("dunning_group")
        .annotate(n=Count("id"), recovered=Count("id", filter=Q(recovered_at__isnull=False)))
        .order_by()
    }
    warned = CardExpiryNotice.objects.filter(created_at__gte=since, created_at__lt=until).count()
    return {"by_decline": kinds, "holdout_groups": groups, "card_expiry_warnings": warned}
