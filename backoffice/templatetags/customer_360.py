"""Small display helpers for the customer 360 page."""

from django import template

register = template.Library()


@register.filter
def minor_units(amount, currency: str = "") -> str:
    """1499, "eur" -> "14.99 EUR" (Stripe amounts are in minor units)."""
    if amount in (None, ""):
        return "—"
    return f"{int(amount) / 100:,.2f} {str(currency).upper()}".strip()


@register.filter
def timeline_kind(kind: str) -> str:
    """payment.failed -> "Payment failed" (customers/timeline_labels.py)."""
    from customers.timeline_labels import timeline_kind_label

    return timeline_kind_label(kind)


@register.filter
def lookup(mapping, key):
    """`mapping[key]` in a template (an email's shown state by its id)."""
    return mapping.get(key) if mapping else None
