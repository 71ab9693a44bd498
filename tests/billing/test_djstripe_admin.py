"""The owners' dj-stripe pages open for invoices in the shape of the Stripe API version we pin (no `paid` field)."""

import json
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from djstripe import models as djstripe_models

from tests.customers.factories import StaffUserFactory

FIXTURE = Path(settings.BASE_DIR) / "devtools" / "fakes" / "stripe" / "fixtures" / "invoice.json"


def test_owner_opens_the_invoice_list_and_an_invoice(client, db):
    stripe_data = json.loads(FIXTURE.read_text())
    assert "paid" not in stripe_data  # removed from Invoice in 2025-03-31.basil, the version settings pin
    customer = djstripe_models.Customer.objects.create(id="cus_basil", livemode=False)
    invoice = djstripe_models.Invoice.objects.create(id="in_basil", customer=customer, stripe_data=stripe_data)
    client.force_login(StaffUserFactory(is_superuser=True))

    listing = client.get(reverse("admin:djstripe_invoice_changelist"))
    page = client.get(reverse("admin:djstripe_invoice_change", args=[invoice.pk]))

    assert listing.status_code == 200
    assert "in_basil" in listing.content.decode()
    assert page.status_code == 200
