"""Rendering staff-edited email templates: Jinja2 in the sandbox, inside ModReady's layout, HTML plus plain text.

Templates are written by marketing in the admin, so they run in `ImmutableSandboxedEnvironment`: no attribute that
starts with an underscore, no method that mutates a list or dict, no access to Python internals. The context is
plain dicts and strings built here, never model instances, so a template cannot reach the ORM either.
HTML is autoescaped; subject and text are not (they are not HTML). Undefined names fail loudly (StrictUndefined):
a typo must stop one email, not send "Hi ," to ten thousand customers.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

LAYOUT_DIR = Path(__file__).parent / "jinja"
# Stripe amounts are in the smallest unit; for these currencies that unit is the whole one
# (https://docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd"}
)
CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}


def money(amount: Any, currency: str = "usd") -> str:
    """Minor units (Stripe's amounts) to a price: money(999, "usd") -> "$9.99"."""
    currency = (currency or "usd").lower()
    try:
        value = int(amount) / (1 if currency in ZERO_DECIMAL_CURRENCIES else 100)
    except (TypeError, ValueError):
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{value:,.2f}" if symbol else f"{value:,.2f} {currency.upper()}"


def format_date(value: Any, fmt: str = "%B %-d, %Y") -> str:
    """Dates in emails: ISO strings, datetimes and Unix timestamps all print as "March 3, 2026"."""
    if value in (None, ""):
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        value = parsed
    if isinstance(value, datetime | date):
        return value.strftime(fmt)
    return str(value)


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    environment = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(LAYOUT_DIR),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = money
    environment.filters["date"] = format_date
    return environment


HTML_ENVIRONMENT = _environment(autoescape=True)
TEXT_ENVIRONMENT = _environment(autoescape=False)


def _wrap(body: str, layout: str) -> str:
    # Staff write only the content; it is placed in the layout's "content" block. A body that extends the layout
    # itself (to fill other blocks, such as the preheader) is left alone.
    if "{% extends" in body:
        return body
    return f'{{% extends "{layout}" %}}{{% block content %}}{body}{{% endblock %}}'


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class _Compiled:
    subject: Any
    preheader: Any
    html: Any
    text: Any


_cache: dict[tuple, _Compiled] = {}


def _compile(*, subject: str, preheader: str, html: str, text: str) -> _Compiled:
    key = (subject, preheader, html, text)
    compiled = _cache.get(key)
    if compiled is None:
        if len(_cache) > 256:  # templates are few; this only bounds memory after many admin edits
            _cache.clear()
        compiled = _Compiled(
            subject=TEXT_ENVIRONMENT.from_string(subject),
            preheader=TEXT_ENVIRONMENT.from_string(preheader),
            html=HTML_ENVIRONMENT.from_string(_wrap(html, "layout.html")),
            text=TEXT_ENVIRONMENT.from_string(_wrap(text, "layout.txt")),
        )
        _cache[key] = compiled
    return compiled


def render_email(*, template, context: dict[str, Any]) -> RenderedEmail:
    """Render an EmailTemplate (or anything with subject/preheader/html_body/text_body). Raises jinja2.TemplateError."""
    compiled = _compile(
        subject=template.subject,
        preheader=getattr(template, "preheader", "") or "",
        html=template.html_body,
        text=template.text_body,
    )
    context = {**context, "is_marketing": template.category == "marketing"}
    subject = " ".join(compiled.subject.render(context).split())
    if not subject:
        raise TemplateError("The subject renders empty")
    context["subject"] = subject
    context["preheader"] = " ".join(compiled.preheader.render(context).split())
    return RenderedEmail(
        subject=subject, html=compiled.html.render(context), text=compiled.text.render(context).strip()
    )


def template_compile_errors(*, subject: str, html: str, text: str, preheader: str = "") -> dict[str, str]:
    """What is wrong with a template, per field; empty when it compiles and renders for a sample customer."""
    errors: dict[str, str] = {}
    sources = {
        "subject": (TEXT_ENVIRONMENT, subject or ""),
        "preheader": (TEXT_ENVIRONMENT, preheader or ""),
        "html_body": (HTML_ENVIRONMENT, _wrap(html or "", "layout.html")),
        "text_body": (TEXT_ENVIRONMENT, _wrap(text or "", "layout.txt")),
    }
    sample = sample_context()
    for field, (environment, source) in sources.items():
        try:
            environment.from_string(source).render(
                {**sample, "subject": "Sample", "preheader": "", "is_marketing": True}
            )
        except TemplateError as exc:
            line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
            errors[field] = f"{type(exc).__name__}{line}: {exc.message if hasattr(exc, 'message') else exc}"
    return errors


# --- context ----------------------------------------------------------------------------------------------------


def customer_context(customer) -> dict[str, Any]:
    name = (customer.name or "").strip()
    return {
        "name": name,
        "first_name": name.split()[0] if name else "there",
        "email": customer.email,
        "vip": bool(customer.vip_status),
        "lifecycle_stage": customer.lifecycle_stage,
        "promo_code": customer.promo_code,
        "discord_invite_link": customer.discord_invite_link_vip or customer.discord_invite_link_basic or "",
    }


SUBSCRIPTION_FIELDS = (
    "product_name",
    "status",
    "amount",
    "currency",
    "interval",
    "current_period_end",
    "cancel_at_period_end",
    "trial_end",
)


def subscription_context(*, customer, event_payload: dict[str, Any]) -> dict[str, Any] | None:
    """The customer's current subscription from billing, or what the triggering event said about it.

    Billing's selector is imported lazily: automations must keep working (from the event payload) when billing has
    no subscription for the customer yet, or in a deployment without billing's tables.
    """
    subscription = None
    try:
        from billing.selectors import subscription_current_for_customer
    except ImportError:
        subscription_current_for_customer = None
    if subscription_current_for_customer is not None:
        subscription = subscription_current_for_customer(customer=customer)
    if subscription is not None:
        values = {field: getattr(subscription, field, None) for field in SUBSCRIPTION_FIELDS}
        for field in ("current_period_end", "trial_end"):
            if isinstance(values[field], datetime):
                values[field] = values[field].isoformat()
        return values
    if event_payload.get("product_name") or event_payload.get("subscription_id"):
        return {field: event_payload.get(field) for field in SUBSCRIPTION_FIELDS}
    return None


def links_context() -> dict[str, str]:
    return {
        "site_url": settings.SITE_URL,  # this back-office (where unsubscribe links point)
        "website_url": settings.AUTOMATIONS_WEBSITE_URL,  # the public website: plans, sign-up
        "discord_url": settings.AUTOMATIONS_DISCORD_URL,
        "panel_url": settings.AUTOMATIONS_PANEL_URL,
        "billing_url": settings.AUTOMATIONS_BILLING_URL,
    }


def sample_context() -> dict[str, Any]:
    """A customer and every documented event field, for previews without a customer and for the save-time check."""
    return {
        "customer": {
            "name": "Alex Builder",
            "first_name": "Alex",
            "email": "alex@example.com",
            "vip": False,
            "lifecycle_stage": "active",
            "promo_code": "",
            "discord_invite_link": "",
        },
        "subscription": {
            "product_name": "Modded Server 8 GB",
            "status": "active",
            "amount": 1999,
            "currency": "usd",
            "interval": "month",
            "current_period_end": "2026-12-01T00:00:00+00:00",
            "cancel_at_period_end": False,
            "trial_end": None,
        },
        "event": {
            "subscription_id": "sub_sample",
            "product_id": "prod_sample",
            "product_name": "Modded Server 8 GB",
            "amount": 1999,
            "amount_due": 1999,
            "currency": "usd",
            "interval": "month",
            "attempt_count": 1,
            "next_payment_attempt": "2026-12-04T00:00:00+00:00",
            "hosted_invoice_url": "https://invoice.stripe.com/i/sample",
            "cancellation_reason": "",
            "feedback": "",
            "comment": "",
            "trial_end": None,
        },
        "unsubscribe_url": f"{settings.SITE_URL}/email/unsubscribe/sample",
        **links_context(),
    }
