"""Reads for other apps, the admin and the API, with their joins already applied."""

from django.db.models import Case, IntegerField, QuerySet, Value, When

from customers.models import Customer

from .models import CURRENT_STATUSES, StripeEventProcessing, Subscription
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


def subscription_exists_filter(*, customer, product_id: str | None = None, statuses=None) -> QuerySet[Subscription]:
    """Subscriptions of `customer` (a customer or an OuterRef), for `Exists(...)` filters on customers."""
    queryset = Subscription.objects.filter(customer=customer)
    if product_id is not None:
        queryset = queryset.filter(product_id=product_id)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    return queryset
