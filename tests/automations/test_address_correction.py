"""Issue 18, "Fixing a bounced address": Support corrects a customer's email from the customer page. The change goes
to Stripe (through its API, under an idempotency key from our ids) and then to the CRM, audited; the old address's
hard bounce does not block the new one; blocked emails still current go out to the new address, the others not."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from automations.models import AutomationRule, EmailQueueItem, QueueStatus, StepAnchor, SuppressionReason
from automations.services.suppressions import suppression_add
from customers.models import Customer, StaffAction, StaffActionKind, TimelineEvent
from devtools.fakes.stripe.objects import stripe_event
from tests.billing.conftest import deliver, fake_stripe, fake_stripe_server, webhook_endpoint  # noqa: F401
from tests.customers.factories import CustomerFactory

from .conftest import make_due, payment_failed_payload
from .factories import QueuedEmailFactory

pytestmark = pytest.mark.django_db

OLD, NEW = "robin@dead.example", "robin@alive.example"


@pytest.fixture
def bounced(fake_stripe, publish):  # noqa: F811
    """A Stripe customer whose address hard-bounced, in dunning: the "payment failed" email was refused (blocked),
    the reminder before Stripe's next attempt waits (blocked too), and a reminder of an earlier attempt that has
    passed was refused long ago."""
    world = fake_stripe.add_subscription(email=OLD)
    customer = CustomerFactory(email=OLD, stripe_customer_id=world.customer["id"], opt_in_confirmed=True)
    suppression_add(email=OLD, reason=SuppressionReason.HARD_BOUNCE, note="550 5.1.1 no such user")
    publish("payment.failed", customer, payment_failed_payload())
    dunning = EmailQueueItem.objects.filter(customer=customer)
    first = dunning.get(step__order=1)
    assert first.status == QueueStatus.SUPPRESSED  # the queue took it at once and refused it
    reminder_step = AutomationRule.objects.get(name="Dunning").steps.get(anchor=StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT)
    three_days_ago = timezone.now() - timedelta(days=3)
    stale = QueuedEmailFactory(
        enrollment=first.enrollment,
        step=reminder_step,
        occurrence="in_0:attempt-1",
        idempotency_key=f"email:enrollment-{first.enrollment_id}:step-{reminder_step.pk}:in_0:attempt-1",
        scheduled_at=three_days_ago,
        status=QueueStatus.SUPPRESSED,
        last_error="Blocked: the address hard-bounced",
    )
    return customer, first, stale


def correct(client, customer, email=NEW, reason="The address bounced; customer gave the new one on Discord"):
    return client.post(
        reverse("admin:customers_customer_action", args=[customer.pk, "email_change"]),
        {"email": email, "reason": reason},
    )


def messages_of(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def test_support_corrects_the_email_in_stripe_and_here_audited(
    client,
    support_user,
    bounced,
    fake_stripe,  # noqa: F811
):
    customer, _, _ = bounced
    client.force_login(support_user)
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    assert 'id="action-email"' in page  # the quick action is offered to Support

    response = correct(client, customer)

    assert response.status_code == 302
    assert "Done: corrected the email from robin@dead.example to robin@alive.example in Stripe and here" in (
        messages_of(response)
    )
    customer.refresh_from_db()
    assert customer.email == NEW
    assert fake_stripe.get(customer.stripe_customer_id)["email"] == NEW
    audit = StaffAction.objects.get(customer=customer, action=StaffActionKind.EMAIL_CHANGE)
    assert audit.actor == support_user and "bounced" in audit.reason
    assert audit.details["from"] == OLD and audit.details["to"] == NEW
    assert fake_stripe.customer_updates == [
        {
            "id": customer.stripe_customer_id,
            "params": {"email": NEW},
            "idempotency_key": f"staff-action:{audit.pk}:stripe-customer-email",
        }
    ]
    assert TimelineEvent.objects.filter(customer=customer, kind="staff.email_change").exists()


def test_a_late_customer_updated_from_stripe_agrees_with_the_correction(
    client,
    support_user,
    bounced,
    fake_stripe,  # noqa: F811
    deliver,  # noqa: F811
):
    """Stripe was written first: its customer.updated (even one carrying the old address, delivered late) leaves the
    new address in place, because the handler reads Stripe's current customer."""
    customer, _, _ = bounced
    stale_payload = dict(fake_stripe.get(customer.stripe_customer_id), email=OLD)
    client.force_login(support_user)
    correct(client, customer)

    assert deliver(stripe_event("customer.updated", stale_payload)).status_code == 200
    customer.refresh_from_db()
    assert customer.email == NEW


def test_blocked_emails_still_current_go_to_the_new_address_and_stale_ones_do_not(client, support_user, bounced, drain):
    customer, first, stale = bounced
    client.force_login(support_user)
    response = correct(client, customer)
    assert "1 blocked email(s) will go to the new address" in messages_of(response)

    drain()
    first.refresh_from_db()
    assert first.status == QueueStatus.SENT and first.recipient == NEW
    assert [message.to for message in mail.outbox] == [[NEW]]  # "payment failed", once, to the new address
    stale.refresh_from_db()
    assert stale.status == QueueStatus.SUPPRESSED
    assert "not re-sent after the address was corrected" in stale.last_error
    assert "payment attempt it announced has passed" in stale.last_error

    # The old address's hard bounce does not block the new one: the reminder goes out when due.
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    assert "All email is blocked" not in page
    make_due(EmailQueueItem.objects.filter(customer=customer, step__anchor=StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT))
    drain()
    assert [message.to for message in mail.outbox] == [[NEW], [NEW]]
    assert "robin@dead.example" not in {to for message in mail.outbox for to in message.to}


def test_stripe_failing_changes_nothing(client, support_user, bounced, fake_stripe):  # noqa: F811
    customer, first, _ = bounced
    fake_stripe.fail_next(500, times=3)  # the first call and stripe-python's two retries
    client.force_login(support_user)

    response = correct(client, customer)

    assert "Nothing done: Stripe did not confirm the change" in messages_of(response)
    customer.refresh_from_db()
    first.refresh_from_db()
    assert customer.email == OLD and first.status == QueueStatus.SUPPRESSED
    assert not StaffAction.objects.filter(customer=customer).exists()
    assert fake_stripe.customer_updates == []


def test_an_address_another_customer_has_is_refused_before_stripe(client, support_user, bounced, fake_stripe):  # noqa: F811
    customer, _, _ = bounced
    CustomerFactory(email=NEW)
    client.force_login(support_user)

    response = correct(client, customer)

    assert "Another customer already has robin@alive.example" in messages_of(response)
    assert Customer.objects.get(pk=customer.pk).email == OLD
    assert fake_stripe.requests_to("POST", r"/v1/customers/.*") == []


def test_marketing_may_not_change_an_address(client, marketing_user, bounced, fake_stripe):  # noqa: F811
    customer, _, _ = bounced
    client.force_login(marketing_user)
    assert correct(client, customer).status_code == 403
    assert fake_stripe.customer_updates == []


def test_the_fake_stripe_replays_a_repeated_key_and_refuses_it_with_other_parameters(fake_stripe):  # noqa: F811
    """Stripe's idempotency, as the fake plays it (https://docs.stripe.com/api/idempotent_requests)."""
    from billing.stripe_customers import StripeCustomerError, stripe_customer_email_set

    customer = fake_stripe.add_customer(email=OLD)
    assert stripe_customer_email_set(stripe_customer_id=customer["id"], email=NEW, idempotency_key="k1") == NEW
    assert stripe_customer_email_set(stripe_customer_id=customer["id"], email=NEW, idempotency_key="k1") == NEW
    assert len(fake_stripe.customer_updates) == 1  # the repeat was a replay
    with pytest.raises(StripeCustomerError, match="Stripe refused"):
        stripe_customer_email_set(stripe_customer_id=customer["id"], email="other@example.com", idempotency_key="k1")
