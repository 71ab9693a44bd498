"""The daily Stripe sync: list every subscription, mirror it through dj-stripe, heal what webhooks missed.

One list call per 100 subscriptions (`status=all`), with the customer, the products and the latest invoice
expanded, so nothing needs a call per subscription (https://docs.stripe.com/api/subscriptions/list,
https://docs.stripe.com/expand). For each ModReady subscription:

1. dj-stripe's mirror: the customer and product rows are written from the expanded objects (no re-fetch), then the
   subscription from the listed data, shaped like a retrieved one. An unchanged subscription is not written at all.
2. The CRM: `billing.services.subscriptions.subscription_apply_stripe_state`, the same function the webhooks call, so a
   change found here produces the same timeline entry and domain event under the same key, exactly once.
3. The latest invoice (when recent) through `invoice_apply_stripe_state`: a payment failure or recovery that no
   webhook told us about.

A page that fails (network, 429, 5xx) is retried with backoff; one bad subscription is logged, counted and skipped.
dj-stripe's `djstripe_sync_models` is never called (it walks account endpoints and is very slow).
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from djstripe import models as djstripe_models
from djstripe.settings import djstripe_settings
from stripe._util import convert_to_stripe_object

from core.retry import backoff_seconds
from customers.services import normalize_email

from .card_expiry import card_expiry_due, card_expiry_notice_record
from .models import ENDED_STATUSES, Subscription
from .services import invoices, subscriptions
from .stripe_objects import (
    customer_email_and_name,
    object_id,
    product_is_modready,
    subscription_state,
    timestamp_to_datetime,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
LIST_EXPAND = [
    "data.customer",
    "data.items.data.price.product",
    "data.latest_invoice",
    # The card each renewal will be charged to (billing/card_expiry.py): the subscription's own, else the customer's.
    "data.default_payment_method",
    "data.customer.invoice_settings.default_payment_method",
]
# Only a latest invoice this recent can be news; an older one was long settled (and its webhooks long processed).
RECENT_INVOICE = timedelta(days=35)
RETRYABLE = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)
# A failed page waits retry_delay, then twice that, ... (core/retry.py); the cap is above what the default four
# attempts reach (2 s, 4 s, 8 s), so it only bounds a caller's larger retry_delay or attempts.
PAGE_RETRY_CAP_SECONDS = 60.0


@dataclass
class SyncSummary:
    pages: int = 0
    seen: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    status_changes: int = 0
    skipped_not_modready: int = 0
    errors: int = 0
    page_retries: int = 0
    card_expiry_warnings: int = 0
    # Set when the run stopped at its deadline with pages left: where the next run continues.
    next_starting_after: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in asdict(self).items())


def _stripe_client() -> stripe.StripeClient:
    # Read stripe.api_base now (dj-stripe sets it from STRIPE_API_HOST; tests and benchmarks point it at the fake).
    return stripe.StripeClient(
        djstripe_settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": stripe.api_base},
        max_network_retries=stripe.max_network_retries,
    )


def _list_page(
    client: stripe.StripeClient, *, starting_after: str | None, attempts: int, retry_delay: float, summary: SyncSummary
) -> dict:
    """One page as plain JSON: raw_request skips building 10,000 StripeObjects per page only to turn them back into
    dicts (most of the sync's CPU when nothing changed)."""
    params = {"status": "all", "limit": PAGE_SIZE, "expand": LIST_EXPAND}
    if starting_after:
        params["starting_after"] = starting_after
    for attempt in range(1, attempts + 1):
        try:
            return json.loads(client.raw_request("get", "/v1/subscriptions", **params).body)
        except RETRYABLE as exc:
            if attempt == attempts:
                raise
            summary.page_retries += 1
            wait = backoff_seconds(attempt, base=retry_delay, cap=PAGE_RETRY_CAP_SECONDS)
            logger.warning("Stripe subscription page failed (%s); retry %d in %.1fs", exc, attempt, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _as_retrieved(subscription: dict) -> dict:
    """The listed subscription with its expansions folded back to ids: the shape a retrieve (and a webhook) gives.
    Copies only the dicts on the way to an expansion; the listed object is left as it was."""
    data = dict(subscription, customer=object_id(subscription.get("customer")))
    if isinstance(data.get("default_payment_method"), dict):
        data["default_payment_method"] = data["default_payment_method"]["id"]
    if isinstance(data.get("latest_invoice"), dict):
        data["latest_invoice"] = data["latest_invoice"]["id"]
    items = data.get("items")
    if isinstance(items, dict) and items.get("data"):
        folded = []
        for item in items["data"]:
            price = item.get("price") or {}
            if isinstance(price.get("product"), dict):
                item = dict(item, price=dict(price, product=price["product"]["id"]))
            folded.append(item)
        data["items"] = dict(items, data=folded)
    return data


def _customer_as_retrieved(customer: dict | None) -> dict | None:
    """The expanded customer with its invoice default payment method folded back to an id (as dj-stripe keeps it)."""
    settings_ = (customer or {}).get("invoice_settings")
    if not isinstance(settings_, dict) or not isinstance(settings_.get("default_payment_method"), dict):
        return customer
    return dict(
        customer, invoice_settings=dict(settings_, default_payment_method=settings_["default_payment_method"]["id"])
    )


def _expanded_products(subscription: dict) -> dict[str, dict]:
    products = {}
    for item in (subscription.get("items") or {}).get("data") or []:
        product = (item.get("price") or {}).get("product")
        if isinstance(product, dict):
            products[product["id"]] = product
    return products


def _same(known: dict | None, data: dict) -> bool:
    """Whether a stored dj-stripe row already holds this data (dj-stripe adds keys of its own, e.g. `deleted`)."""
    return known is not None and all(known.get(key) == value for key, value in data.items())


def _mirror(model, data: dict, *, known: dict | None):
    """Write a dj-stripe row from data we already have, unless it already holds exactly that."""
    if _same(known, data):
        return None
    api_key = djstripe_settings.STRIPE_SECRET_KEY
    return model.sync_from_stripe_data(convert_to_stripe_object(data, api_key=api_key), api_key=api_key)


@dataclass
class _KnownPage:
    """What the database already holds for one page, read in four queries instead of several per subscription."""

    subscriptions: dict[str, tuple[int, dict]]
    customers: dict[str, dict]
    products: dict[str, dict]
    crm: dict[str, Subscription]

    @classmethod
    def load(cls, page: list[dict]) -> "_KnownPage":
        ids = [sub["id"] for sub in page]
        customer_ids = {object_id(sub.get("customer")) for sub in page}
        product_ids = {product_id for sub in page for product_id in _expanded_products(sub)}
        return cls(
            subscriptions={
                row[0]: (row[1], row[2])
                for row in djstripe_models.Subscription.objects.filter(id__in=ids).values_list(
                    "id", "djstripe_id", "stripe_data"
                )
            },
            customers=dict(
                djstripe_models.Customer.objects.filter(id__in=customer_ids).values_list("id", "stripe_data")
            ),
            products=dict(djstripe_models.Product.objects.filter(id__in=product_ids).values_list("id", "stripe_data")),
            crm={
                sub.stripe_subscription_id: sub
                for sub in Subscription.objects.select_related("customer").filter(stripe_subscription_id__in=ids)
            },
        )


def _crm_is_current(crm: Subscription | None, state, *, djstripe_pk: int | None, customer: dict | None) -> bool:
    if crm is None or crm.djstripe_subscription_id != djstripe_pk:
        return False
    if any(getattr(crm, name) != value for name, value in state.model_fields().items()):
        return False
    email, name = customer_email_and_name(customer)
    return (not email or crm.customer.email == normalize_email(email)) and (not name or crm.customer.name == name)


def _invoice_needs_attention(invoice, *, subscription_status: str) -> bool:
    """Only a recent failed (open, attempted) or recovered (paid after several attempts) invoice can be news. An open
    invoice of a subscription that has ended is no failure any more (billing/services/invoices.py says the same):
    looking at it would only send the unchanged subscription down the slow path every day."""
    if not isinstance(invoice, dict) or not _invoice_is_recent(invoice):
        return False
    attempts = int(invoice.get("attempt_count") or 0)
    if invoice.get("status") == "open" and attempts >= 1:
        return subscription_status not in ENDED_STATUSES
    return invoice.get("status") == "paid" and attempts > 1


def _sync_one(subscription: dict, *, known: _KnownPage, summary: SyncSummary) -> None:
    products = _expanded_products(subscription)
    if not any(product_is_modready(product_id, product) for product_id, product in products.items()):
        summary.skipped_not_modready += 1
        return
    expanded_customer = subscription.get("customer") if isinstance(subscription.get("customer"), dict) else None
    customer = _customer_as_retrieved(expanded_customer)
    retrieved = _as_retrieved(subscription)
    invoice = subscription.get("latest_invoice")
    djsub_pk, djsub_data = known.subscriptions.get(retrieved["id"], (None, None))

    # The daily case: nothing changed since yesterday. Decided from the page's preloaded rows, without a query.
    state = subscription_state(retrieved, product_lookup=products.get)
    unchanged_mirror = (
        _same(djsub_data, retrieved)
        and (customer is None or _same(known.customers.get(customer["id"]), customer))
        and all(_same(known.products.get(product_id), product) for product_id, product in products.items())
    )
    invoice_is_news = _invoice_needs_attention(invoice, subscription_status=retrieved.get("status") or "")
    card = card_expiry_due(
        subscription=subscription, customer=expanded_customer, renewal_at=state.current_period_end, now=timezone.now()
    )
    if (
        unchanged_mirror
        and _crm_is_current(known.crm.get(retrieved["id"]), state, djstripe_pk=djsub_pk, customer=customer)
        and not invoice_is_news
    ):
        summary.unchanged += 1
        _card_expiry_warn(card, crm=known.crm.get(retrieved["id"]), summary=summary)
        return

    with transaction.atomic():
        if customer:
            _mirror(djstripe_models.Customer, customer, known=known.customers.get(customer["id"]))
            known.customers[customer["id"]] = customer
        for product in products.values():
            # Products repeat across a page: mirror each once (dj-stripe also lists its features, one call).
            _mirror(djstripe_models.Product, product, known=known.products.get(product["id"]))
            known.products[product["id"]] = product
        written = _mirror(djstripe_models.Subscription, retrieved, known=djsub_data)
        djsub_pk = written.pk if written is not None else djsub_pk

        result = subscriptions.subscription_apply_stripe_state(
            stripe_subscription=retrieved,
            product_lookup=products.get,
            stripe_customer=customer,
            djstripe_subscription_pk=djsub_pk,
        )
        if invoice_is_news:
            invoices.invoice_apply_stripe_state(stripe_invoice=invoice, record_plain_payments=False)
        _card_expiry_warn(card, crm=result.subscription, summary=summary)
    if result.created:
        summary.created += 1
    elif result.changed:
        summary.updated += 1
    else:
        summary.unchanged += 1
    summary.status_changes += result.status_changed


def _card_expiry_warn(card, *, crm: Subscription | None, summary: SyncSummary) -> None:
    """Warn about a card that expires before the renewal (billing/card_expiry.py): decided in memory from the page
    (card_expiry_due), so only the few subscriptions whose card is due a warning cost a query."""
    if (
        card is not None
        and crm is not None
        and card_expiry_notice_record(subscription=crm, card=card, now=timezone.now())
    ):
        summary.card_expiry_warnings += 1


def _invoice_is_recent(invoice: dict) -> bool:
    created = timestamp_to_datetime(invoice.get("created"))
    return created is not None and timezone.now() - created <= RECENT_INVOICE


def stripe_sync_run(
    *,
    progress: Callable[[SyncSummary], None] | None = None,
    page_attempts: int = 4,
    retry_delay: float = 2.0,
    starting_after: str | None = None,
    deadline: float | None = None,
) -> SyncSummary:
    """List every Stripe subscription (after `starting_after`) and apply it; returns the counts. Safe to run again
    at any time. With a `deadline` (time.monotonic()), stops after the page that passes it and reports where to go on
    in `next_starting_after`, so the scheduled task stays within django-q2's timeout."""
    summary = SyncSummary()
    client = _stripe_client()
    while True:
        page = _list_page(
            client, starting_after=starting_after, attempts=page_attempts, retry_delay=retry_delay, summary=summary
        )
        summary.pages += 1
        data = page.get("data") or []
        known = _KnownPage.load(data)
        for subscription in data:
            summary.seen += 1
            try:
                _sync_one(subscription, known=known, summary=summary)
            except Exception:  # one bad object must not stop the run
                summary.errors += 1
                logger.exception("Stripe sync: subscription %s failed", subscription.get("id"))
        if progress:
            progress(summary)
        if not page.get("has_more") or not data:
            break
        starting_after = data[-1]["id"]
        if deadline is not None and time.monotonic() >= deadline:
            summary.next_starting_after = starting_after
            break
    logger.info("Stripe sync done: %s", summary)
    return summary
