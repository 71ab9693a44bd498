"""Resend's idempotency keys are namespaced per installation (issue 17): Resend remembers a key for 24 hours for the
whole team, so a staging install sharing the team, or this database restored from a backup, reusing
`email-batch:<id>` with another payload got 409 `invalid_idempotent_request` and left its emails "Outcome unknown"
with no way out. Now every key carries the installation's id (made once at the first migrate, kept in the database),
and staff can re-send an unconfirmed email after review, under a new key, audited."""

from importlib import import_module

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse

from automations.installation import Installation, installation_id, installation_id_forget
from automations.models import BatchStatus, EmailBatch, EmailQueueItem, QueueStatus
from customers.models import StaffAction
from tests.customers.factories import CustomerFactory

from .conftest import make_due, subscription_payload
from .factories import enrollment_with_emails

pytestmark = pytest.mark.django_db

make_installation_id = import_module("automations.migrations.0013_installation_id").make_installation_id


@pytest.fixture(autouse=True)
def fresh_cache():
    installation_id_forget()
    yield
    installation_id_forget()


def become(install_id: str) -> None:
    """This database now belongs to another installation (what a separate deployment's own migrate made)."""
    Installation.objects.update_or_create(id=1, defaults={"installation_id": install_id})
    installation_id_forget()


def queue_welcomes(count: int):
    from automations.models import AutomationRule

    rule = AutomationRule.objects.get(name="Welcome")
    customers = CustomerFactory.create_batch(count)
    for customer in customers:
        enrollment_with_emails(rule=rule, customer=customer, context=subscription_payload(f"sub_{customer.pk}"))
    make_due()
    return customers


def next_batch_id_is(batch_id: int) -> None:
    """The batch ids start again at `batch_id`: another database counting the same ids (staging, or a restore)."""
    EmailBatch.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('automations_emailbatch', 'id'), %s, false)", [batch_id])


def staging_then_production(resend, drain, *, production_id: str):
    """A staging install sends batch N first; then production sends its own batch N, with other emails."""
    become("mr-staging0000")
    queue_welcomes(2)
    drain()
    (staging_batch,) = EmailBatch.objects.all()
    assert staging_batch.status == BatchStatus.SENT
    next_batch_id_is(staging_batch.pk)
    become(production_id)
    production = queue_welcomes(2)
    drain()
    return staging_batch, production


def test_a_staging_install_on_the_same_resend_team_does_not_collide_with_production(resend, drain):
    staging_batch, production = staging_then_production(resend, drain, production_id="mr-production0")

    batch = EmailBatch.objects.get()
    assert batch.pk == staging_batch.pk  # the same id as staging's batch
    assert batch.status == BatchStatus.SENT and resend.idempotency_conflicts == 0
    for customer in production:
        assert set(EmailQueueItem.objects.filter(customer=customer).values_list("status", flat=True)) == {"sent"}
        assert resend.copies_to(customer.email) == 2
    keys = [request.header("idempotency-key") for request in resend.requests]
    assert keys == [f"mr-staging0000:email-batch:{batch.pk}", f"mr-production0:email-batch:{batch.pk}"]


def test_the_id_is_made_once_kept_by_a_restore_and_new_for_a_fresh_install():
    made = Installation.objects.get().installation_id  # the test database's own migrate made it
    assert made.startswith("mr-") and installation_id() == made

    make_installation_id(apps, None)  # migrate again on a restored database: it keeps its id
    assert Installation.objects.get().installation_id == made

    Installation.objects.all().delete()  # a fresh database (staging): its first migrate makes its own
    make_installation_id(apps, None)
    assert Installation.objects.get().installation_id not in ("", made)


def test_an_unconfirmed_email_can_be_re_sent_after_review_under_a_new_key_audited(
    resend, drain, client, marketing_user
):
    # A restore keeps the installation id, so batch ids counted again collide with what Resend remembers: 409.
    staging_batch, production = staging_then_production(resend, drain, production_id="mr-staging0000")
    assert resend.idempotency_conflicts == 1
    unconfirmed = list(EmailQueueItem.objects.filter(status=QueueStatus.UNCONFIRMED).order_by("pk"))
    assert len(unconfirmed) == 4
    calls_before = len(resend.requests)
    client.force_login(marketing_user)
    changelist = reverse("admin:automations_emailqueueitem_changelist")
    selected = {"action": "resend_after_review", "_selected_action": [item.pk for item in unconfirmed]}

    page = client.post(changelist, selected).content.decode()
    assert "Outcome unknown: Resend may have delivered it" in page
    assert f"Idempotency-Key mr-staging0000:email-batch:{staging_batch.pk}" in page
    assert "the customer gets it twice" in page
    assert len(resend.requests) == calls_before  # the confirmation page sends nothing

    key = page.split('name="request_key" value="', 1)[1].split('"', 1)[0]
    client.post(changelist, {**selected, "confirm": "yes", "reason": "checked Resend's log", "request_key": key})
    drain()

    for customer in production:
        assert resend.copies_to(customer.email) == 2  # each of the customer's two emails, once, as copies
    new_keys = {request.header("idempotency-key") for request in resend.requests[calls_before:]}
    assert new_keys and all(k.startswith("mr-staging0000:") for k in new_keys)
    assert f"mr-staging0000:email-batch:{staging_batch.pk}" not in new_keys  # under a new key
    audits = StaffAction.objects.filter(action="email_resend")
    assert audits.count() == 4 and {a.actor for a in audits} == {marketing_user}
    assert {a.reason for a in audits} == {"checked Resend's log"}
    assert set(EmailQueueItem.objects.filter(pk__in=[i.pk for i in unconfirmed]).values_list("status", flat=True)) == {
        QueueStatus.UNCONFIRMED  # the originals keep their honest status; the copies are the ones sent
    }
