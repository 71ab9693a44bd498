"""Keeping the CRM Customer in step with Mautic, through customers.services only."""

from typing import Any

from customers import services as customer_services
from customers.models import Customer
from integrations.mautic.client import field_is_true

# Mautic alias -> Customer field (the seed's field conventions).
MARKETING_FIELDS = {
    "opt_in_confirmed": "opt_in_confirmed",
    "vip_status": "vip_status",
    "promo_code": "promo_code",
    "discord_invite_link_vip": "discord_invite_link_vip",
    "discord_invite_link_basic": "discord_invite_link_basic",
}
BOOLEAN_FIELDS = {"opt_in_confirmed", "vip_status"}


def customer_mirror_mautic(*, contact_id: str, fields: dict[str, Any]) -> tuple[Customer | None, bool]:
    """Upsert the customer by the contact's email with its marketing fields. Returns (customer, changed)."""
    email = str(fields.get("email") or "").strip()
    if not email:
        return None, False
    values: dict[str, Any] = {"mautic_contact_id": str(contact_id)}
    for alias, name in MARKETING_FIELDS.items():
        if alias not in fields:
            continue
        value = fields[alias]
        values[name] = field_is_true(value) if alias in BOOLEAN_FIELDS else str(value or "").strip()
    full_name = " ".join(str(fields.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
    if full_name:
        values["name"] = full_name[:200]
    existing = Customer.objects.filter(email__iexact=email).values(*values).first()
    customer, created = customer_services.customer_upsert(email=email, **values)
    return customer, created or existing != values
