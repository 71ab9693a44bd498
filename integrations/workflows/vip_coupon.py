"""Workflow 2: VIP reservation paid -> Shopware promo code -> Mautic contact (vip_status, promo_code) -> coupon email.

Triggered by billing's `checkout.completed` domain event, which billing publishes for checkout.session.completed and
for checkout.session.async_payment_succeeded. One run per checkout session (key `checkout-session:<cs>:vip-coupon`):

1. Stripe: the session must be `paid` now, and its line items must hold STRIPE_VIP_RESERVATION_PRODUCT_ID
   (https://docs.stripe.com/api/checkout/sessions/line_items).
2. The promo code is stored with the session id (unique) before any outside call, so a retry reuses it and a
   session never yields two codes.
3. Shopware: the code is created under an id derived from the session (uuid5), so after an unknown outcome (a
   timeout, a 5xx) the retry first asks Shopware whether that id exists, and a duplicate answer (HTTP 500 "1062
   Duplicate entry") is checked the same way. Codes are unique across all promotions: when our id does not hold it,
   the code is taken elsewhere, and a new one is stored (before any email) and created instead.
4. Only when Shopware has the code: Mautic find-or-create by the Stripe email, `vip_status` and `promo_code` set,
   the coupon email sent at most once (emails.py: a send whose answer was lost is not repeated; the run asks staff to
   check). A Shopware failure leaves Mautic untouched; the run retries with backoff.
5. The CRM Customer gets `vip_status`, `promo_code` and the steps on its timeline.
"""

import logging
import secrets
import uuid

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from djstripe.settings import djstripe_settings

from customers import events
from customers import services as customer_services
from customers.events import subscriber
from customers.mautic_state import customer_mautic_state_time_note
from integrations.mautic.client import MauticClient
from integrations.models import PromoCode, RunKind
from integrations.runs import RunSkipped, StepRecorder, workflow, workflow_run_create
from integrations.shopware.client import ShopwareClient, ShopwareError

from .emails import email_send_once

logger = logging.getLogger(__name__)

# Namespace of the Shopware ids we derive from checkout sessions (any fixed uuid; never change it).
SHOPWARE_ID_NAMESPACE = uuid.UUID("6f1c1f0e-3c8a-4f7e-9a5e-6d0b8f9c2a11")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by people


def vip_workflow_enabled() -> bool:
    return bool(settings.SHOPWARE_ENABLED and settings.MAUTIC_ENABLED and settings.STRIPE_VIP_RESERVATION_PRODUCT_ID)


@subscriber(events.CHECKOUT_COMPLETED)
def on_checkout_completed(event) -> None:
    """Start a run for a paid session; the run itself checks the line items with Stripe."""
    payload = event.payload or {}
    if payload.get("payment_status") != "paid" or not vip_workflow_enabled():
        return
    session_id = payload["session_id"]
    workflow_run_create(
        kind=RunKind.VIP_COUPON,
        key=f"checkout-session:{session_id}:vip-coupon",
        subject=session_id,
        input={"session_id": session_id, "email": payload.get("customer_email") or ""},
        customer=event.customer,
    )


def shopware_id_for(session_id: str) -> str:
    return uuid.uuid5(SHOPWARE_ID_NAMESPACE, f"checkout-session:{session_id}:promo").hex


def new_code() -> str:
    return "VIP-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def promo_code_get_or_create(*, session_id: str, email: str) -> PromoCode:
    """The session's code, created once (the unique session id settles a race between two workers)."""
    existing = PromoCode.objects.filter(checkout_session_id=session_id).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return PromoCode.objects.create(
                checkout_session_id=session_id, code=new_code(), shopware_id=shopware_id_for(session_id), email=email
            )
    except IntegrityError:
        return PromoCode.objects.get(checkout_session_id=session_id)


def _stripe_session(session_id: str) -> tuple[dict, list[str]]:
    options = {"api_key": djstripe_settings.STRIPE_SECRET_KEY, "stripe_version": settings.STRIPE_API_VERSION}
    session = stripe.checkout.Session.retrieve(session_id, **options)
    items = stripe.checkout.Session.list_line_items(session_id, limit=100, **options)
    product_ids = []
    for item in items.auto_paging_iter():
        product = (item.get("price") or {}).get("product")
        product_ids.append(product if isinstance(product, str) else (product or {}).get("id"))
    return session, product_ids


# New codes tried in one attempt when Shopware says the code exists elsewhere (a collision is rare: 32^10 codes).
MAX_CODE_REPLACEMENTS = 5


def promo_code_replace(promo: PromoCode) -> PromoCode:
    """A new code for a session whose code Shopware already holds under another id (another promotion's code, or
    one made by hand). Only before Shopware has ours and before any email: the code we email is the one stored."""
    for _ in range(MAX_CODE_REPLACEMENTS):
        code = new_code()
        try:
            with transaction.atomic():
                replaced = PromoCode.objects.filter(
                    pk=promo.pk, in_shopware_at=None, email_requested_at=None, emailed_at=None
                ).update(code=code)
        except IntegrityError:  # one of our own codes already: draw again
            continue
        if not replaced:
            raise RuntimeError(f"promo code {promo.code} is in Shopware or emailed already; it is not replaced")
        promo.code = code
        return promo
    raise RuntimeError("no free promo code found")


def _shopware_ensure(recorder: StepRecorder, promo: PromoCode) -> PromoCode:
    """Shopware holds the session's code under our id when this returns. A duplicate answer means either that our
    id holds it already (an earlier create whose answer was lost) or that the code is taken elsewhere: read our id
    back to tell which, and in the second case store a new code and create that one."""
    shopware = ShopwareClient.from_settings()
    taken: list[str] = []
    with recorder.step("shopware.code", detail=promo.code) as note:
        # After an earlier attempt the outcome of its create may be unknown: ask before creating again.
        found = shopware.individual_code_get(promo.shopware_id) if recorder.run.attempts > 1 else None
        while found is None:
            try:
                shopware.individual_code_create(
                    id=promo.shopware_id, promotion_id=settings.SHOPWARE_VIP_PROMOTION_ID, code=promo.code
                )
                note.detail = f"{promo.code} created"
                break
            except ShopwareError as exc:
                if not exc.is_duplicate:
                    raise
                found = shopware.individual_code_get(promo.shopware_id)
                if found is not None:
                    break
                if len(taken) >= MAX_CODE_REPLACEMENTS:
                    raise ShopwareError(
                        status=500, body=f"codes {', '.join(taken)} are all taken", call=exc.call
                    ) from exc
                taken.append(promo.code)
                promo = promo_code_replace(promo)
                logger.info("Promo code %s exists elsewhere in Shopware; trying %s", taken[-1], promo.code)
        if found is not None:
            if found.code != promo.code:
                raise ShopwareError(status=200, body=f"id {promo.shopware_id} holds {found.code}", call="code.check")
            note.detail = f"{promo.code} already in Shopware"
        if taken:
            note.detail += f" (new code: {', '.join(taken)} already taken in Shopware)"
    PromoCode.objects.filter(pk=promo.pk).update(in_shopware_at=timezone.now())
    return promo


@workflow(RunKind.VIP_COUPON)
def vip_coupon(recorder: StepRecorder) -> str:
    session_id = recorder.run.input["session_id"]
    with recorder.step("stripe.session") as note:
        session, product_ids = _stripe_session(session_id)
        note.detail = f"{session.get('payment_status')}, products {', '.join(p for p in product_ids if p)}"
    if session.get("payment_status") != "paid":
        raise RunSkipped(f"payment_status is {session.get('payment_status')}")
    if settings.STRIPE_VIP_RESERVATION_PRODUCT_ID not in product_ids:
        raise RunSkipped("no VIP reservation in the line items")
    email = ((session.get("customer_details") or {}).get("email") or recorder.run.input.get("email") or "").strip()
    if not email:
        raise RunSkipped("the session has no email")

    promo = promo_code_get_or_create(session_id=session_id, email=email)
    if promo.in_shopware_at is None:
        promo = _shopware_ensure(recorder, promo)

    mautic = MauticClient.from_settings()
    with recorder.step("mautic.contact") as note:
        contact = mautic.contact_find_by_email(email)
        if contact is None:
            contact = mautic.contact_create(email=email)
            note.detail = f"created contact {contact.id}"
        else:
            note.detail = f"found contact {contact.id}"
    with recorder.step("mautic.write", detail="vip_status, promo_code"):
        edited = mautic.contact_edit(contact.id, {"vip_status": True, "promo_code": promo.code})
    PromoCode.objects.filter(pk=promo.pk).update(mautic_contact_id=contact.id)
    promo.refresh_from_db()
    if promo.emailed_at is None:
        email_send_once(
            recorder,
            row=promo,
            step="mautic.coupon_email",
            detail=f"email {settings.MAUTIC_EMAIL_COUPON}",
            send=lambda: mautic.email_send(email_id=settings.MAUTIC_EMAIL_COUPON, contact_id=contact.id),
        )
        PromoCode.objects.filter(pk=promo.pk).update(emailed_at=timezone.now())

    customer, _ = customer_services.customer_upsert(
        email=email, vip_status=True, promo_code=promo.code, mautic_contact_id=contact.id
    )
    if edited.modified_at:  # a late webhook of the contact's older state must not undo the flag and the code
        customer_mautic_state_time_note(customer=customer, as_of=edited.modified_at)
    recorder.customer_set(customer)
    recorder.record("crm.customer", "ok", f"VIP with promo code {promo.code}", timezone.now())
    return f"promo code {promo.code} in Shopware, Mautic contact {contact.id} emailed"
