"""Rendering claimed queue items into the messages a transport sends (integrations/email_transport.py's shape)."""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.validators import validate_email

from billing.card_update_links import card_update_url

from .models import (
    EmailQueueItem,
    TemplateCategory,
)
from .preference_links import preferences_url
from .render_context import SUBSCRIPTION_FIELDS, customer_context, links_context, payment_context
from .rendering import render_email
from .services.suppressions import unsubscribe_url

logger = logging.getLogger(__name__)


def _mentions_subscription(template) -> bool:
    return any(
        "subscription" in source
        for source in (template.subject, template.preheader, template.html_body, template.text_body)
    )


def subscription_contexts(items: list[EmailQueueItem]) -> dict[int, dict[str, Any] | None]:
    """Each email's `subscription` context, by queue item id, for a whole batch in one query into billing.

    The same answer as render_context.subscription_context (billing's current subscription, else the triggering event's
    payload), loaded in bulk: one query per email was the drain's biggest cost. Only for templates that mention it.
    """
    needing = [item for item in items if _mentions_subscription(item.step.template)]
    if not needing:
        return {}
    try:
        from billing.selectors import subscriptions_current_for_customers
    except ImportError:  # a deployment without billing: the event payload is all there is
        current = {}
    else:
        current = subscriptions_current_for_customers(customer_ids={item.customer_id for item in needing})
    contexts: dict[int, dict[str, Any] | None] = {}
    for item in needing:
        subscription = current.get(item.customer_id)
        payload = item.enrollment.context or {}
        if subscription is not None:
            values = {name: getattr(subscription, name, None) for name in SUBSCRIPTION_FIELDS}
            for name in ("current_period_end", "trial_end"):
                if isinstance(values[name], datetime):
                    values[name] = values[name].isoformat()
            contexts[item.pk] = values
        elif payload.get("product_name") or payload.get("subscription_id"):
            contexts[item.pk] = {name: payload.get(name) for name in SUBSCRIPTION_FIELDS}
        else:
            contexts[item.pk] = None
    return contexts


def message_for(item: EmailQueueItem, *, subscription: dict[str, Any] | None, links: dict[str, str]) -> dict:
    """Render one email to the transports' message shape. Raises TemplateError or ValidationError for a bad email."""
    validate_email(item.recipient)
    template = item.step.template
    link = unsubscribe_url(email=item.recipient, queue_item_id=item.pk)
    context = {
        "customer": customer_context(item.customer),
        "subscription": subscription,
        "event": item.enrollment.context,
        "unsubscribe_url": link,
        # The customer's preference page (topics, or leave all marketing): automations/preference_views.py.
        "preferences_url": preferences_url(customer_id=item.customer_id),
        # Our signed link to Stripe's card form (billing/card_update_links.py); "" without a Stripe customer.
        "card_update_url": card_update_url(customer=item.customer),
        # The decline and Stripe's next retry of a payment failure (empty for other triggers).
        **payment_context(item.enrollment.context),
        **links,
    }
    rendered = render_email(template=template, context=context)
    headers = {"X-Entity-Ref-ID": item.idempotency_key}
    marketing = template.category == TemplateCategory.MARKETING
    if marketing:
        # RFC 8058 one-click unsubscribe: mailbox providers POST to the link without showing our page.
        headers["List-Unsubscribe"] = f"<{link}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return {
        # Marketing from its own address (and sending domain): a complaint wave never lands on receipts and dunning.
        "from": settings.MARKETING_FROM_EMAIL if marketing else settings.DEFAULT_FROM_EMAIL,
        "to": [item.recipient],
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
        "headers": headers,
    }


def message_preview(item: EmailQueueItem) -> dict:
    """The message the queue would send for `item` if it were rendered now (the admin's preview of an email not yet
    rendered). Writes nothing. Raises TemplateError or ValidationError like the queue's own rendering."""
    contexts = subscription_contexts([item])
    return message_for(item, subscription=contexts.get(item.pk), links=links_context())
