"""A customer with a history, for the customer 360 tests (unit and browser): `n` of everything the page lists."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from djstripe import models as djstripe_models

from automations.models import EmailBatch, EmailEvent, EnrollmentStatus, QueueStatus, Suppression
from billing.models import SubscriptionStatus
from customers import services
from support.models import Ticket, TicketCategory, TicketStatus
from tests.automations.factories import (
    AutomationRuleFactory,
    AutomationStepFactory,
    EnrollmentFactory,
    QueuedEmailFactory,
)
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory

NEXT_RETRY = datetime(2031, 3, 4, 5, 6, tzinfo=UTC)


def customer_with_history(n: int = 2, *, email: str | None = None):
    stripe_id = f"cus_history{n}"
    customer = CustomerFactory(
        email=email or f"history{n}@example.com",
        name="Robin Hill",
        stripe_customer_id=stripe_id,
        vip_status=True,
        opt_in_confirmed=True,
    )
    for stage in ("trial", "purchase", "onboarding"):
        services.customer_move_stage(customer=customer, to_stage=stage, cause=f"into {stage}")
    customer.refresh_from_db()

    SubscriptionFactory(customer=customer, product_name="Pro Server", status=SubscriptionStatus.PAST_DUE)
    for _ in range(n - 1):
        SubscriptionFactory(
            customer=customer, status=SubscriptionStatus.CANCELED, stripe_created=timezone.now() - timedelta(days=400)
        )

    djstripe_customer = djstripe_models.Customer.objects.create(id=stripe_id, livemode=False)
    for i in range(n):
        djstripe_models.Invoice.objects.create(
            id=f"in_paid_{n}_{i}",
            customer=djstripe_customer,
            stripe_data={"status": "paid", "amount_paid": 1500, "currency": "eur"},
        )
    djstripe_models.Invoice.objects.create(
        id=f"in_open_{n}",
        customer=djstripe_customer,
        stripe_data={
            "status": "open",
            "attempt_count": 2,
            "amount_due": 1499,
            "currency": "eur",
            "next_payment_attempt": int(NEXT_RETRY.timestamp()),
        },
    )

    rule = AutomationRuleFactory(name=f"Welcome {n}")
    steps = [AutomationStepFactory(rule=rule, order=i + 1) for i in range(2)]
    for i in range(n):
        enrollment = EnrollmentFactory(
            rule=rule if i == 0 else AutomationRuleFactory(), customer=customer, scope_key=f"s{i}"
        )
        step = steps[0] if i == 0 else AutomationStepFactory(rule=enrollment.rule)
        sent = QueuedEmailFactory(
            enrollment=enrollment,
            step=step,
            status=QueueStatus.SENT,
            sent_at=timezone.now(),
            opened_at=timezone.now(),
            idempotency_key=f"email:{n}:{i}:sent",
        )
        batch = EmailBatch.objects.create(
            idempotency_key=f"email-batch:{n}:{i}",
            provider_idempotency_key=f"email-batch:{n}:{i}",
            status="sent",
            messages=[
                {
                    "item_id": sent.pk,
                    "message": {
                        "from": "hello@modready.example",
                        "to": [customer.email],
                        "subject": f"Your server is ready ({i})",
                        "html": "<p>Hi Robin, your server is ready.</p>",
                        "text": "Hi Robin, your server is ready.",
                    },
                }
            ],
            lease_expires_at=timezone.now(),
            next_attempt_at=timezone.now(),
        )
        sent.batch = batch
        sent.save(update_fields=["batch"])
        EmailEvent.objects.create(
            queue_item=sent, type="opened", occurred_at=timezone.now(), provider_event_id=f"ev{n}-{i}"
        )
        services.timeline_event_record(
            customer=customer, source="email", source_key=f"h{n}-{i}", kind="email.sent", summary=f"Sent number {i}"
        )
        Ticket.objects.create(
            customer=customer,
            discord_user_id=f"9{i}",
            category=TicketCategory.OTHER,
            subject=f"Old question {i}",
            status=TicketStatus.CLOSED,
        )
    pending = QueuedEmailFactory(
        enrollment=customer.enrollments.get(rule=rule), step=steps[1], scheduled_at=timezone.now() + timedelta(days=2)
    )
    Ticket.objects.create(
        customer=customer,
        discord_user_id=f"42{n}",
        category=TicketCategory.BILLING,
        subject="Card declined",
        status="open",
    )
    Suppression.objects.create(email=customer.email, reason="unsubscribe", note="clicked the link")
    return customer, rule, pending


def completed(enrollment):
    enrollment.status = EnrollmentStatus.COMPLETED
    enrollment.save(update_fields=["status"])
    return enrollment
