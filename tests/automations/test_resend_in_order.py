"""Resending a cancelled email keeps its place in its sequence (issue 18): a cancelled "a month since your server
stopped" went out about three weeks early, ahead of step 2. It goes back to its own time; sending it at once is a
separate, explicit choice that says what it will do. From the customer page and from the queue page, as Marketing."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import EmailQueueItem, QueueStatus
from automations.services.queue_items import queue_items_cancel
from customers.lifecycle import Stage
from customers.models import StaffAction
from tests.customers.factories import CustomerFactory

from .conftest import make_due

pytestmark = pytest.mark.django_db

CANCELED = {"subscription_id": "sub_1", "product_id": "prod_modded", "cancellation_reason": "too_expensive"}


@pytest.fixture
def win_back(publish, drain, resend):
    """A churned customer in Win-back: the first email sent, step 2 (+14 days) waiting, step 3 (+30 days) cancelled."""
    customer = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    first, second, third = EmailQueueItem.objects.filter(customer=customer).order_by("step__order")
    make_due(EmailQueueItem.objects.filter(pk=first.pk))
    drain()
    queue_items_cancel(item_ids=[third.pk], reason="Cancelled by staff: wrong offer")
    for item in (first, second, third):
        item.refresh_from_db()
    assert first.status == QueueStatus.SENT and second.status == QueueStatus.PENDING
    assert third.status == QueueStatus.CANCELLED and third.scheduled_at > second.scheduled_at > timezone.now()
    assert len(resend.delivered) == 1
    return customer, second, third


def customer_action(client, customer, **data):
    response = client.post(reverse("admin:customers_customer_action", args=[customer.pk, "email_resend"]), data)
    assert response.status_code == 302
    return client.get(response["Location"]).content.decode()


def copy_of(item):
    return EmailQueueItem.objects.exclude(pk=item.pk).get(enrollment=item.enrollment, step=item.step)


def test_a_resent_cancelled_email_goes_back_to_its_own_time_not_ahead_of_step_2(
    client, marketing_user, win_back, drain, resend
):
    customer, second, third = win_back
    client.force_login(marketing_user)
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    own_time = f"{third.scheduled_at:%Y-%m-%d %H:%M}"
    assert f"Put back for {own_time}" in page  # the button says when it will go
    assert "Send now instead" in page and "ahead of its own time" in page  # and the other choice says what it does

    done = customer_action(client, customer, item_id=third.pk, reason="offer fixed")
    drain()

    copy = copy_of(third)
    assert copy.status == QueueStatus.PENDING and copy.scheduled_at == third.scheduled_at
    assert copy.next_attempt_at == third.scheduled_at
    assert len(resend.delivered) == 1  # nothing went out ahead of step 2
    assert "back in the queue for its own time" in done
    audit = StaffAction.objects.get(customer=customer, action="email_resend")
    assert audit.actor == marketing_user and audit.reason == "offer fixed"

    # In order: step 2 at its time, then step 3 at its own.
    make_due(EmailQueueItem.objects.filter(pk=second.pk))
    drain()
    second.refresh_from_db()
    copy.refresh_from_db()
    assert second.status == QueueStatus.SENT and copy.status == QueueStatus.PENDING


def test_send_now_is_an_explicit_choice_that_says_it_goes_ahead_of_its_time(
    client, marketing_user, win_back, drain, resend
):
    customer, _second, third = win_back
    client.force_login(marketing_user)

    done = customer_action(client, customer, item_id=third.pk, reason="customer asked for it", send_now="1")
    drain()

    copy = copy_of(third)
    assert copy.status == QueueStatus.SENT and len(resend.delivered) == 2
    assert "now, ahead of its own time" in done
    audit = StaffAction.objects.get(customer=customer, action="email_resend")
    assert audit.details["sent_ahead"] is True


def test_a_cancelled_email_whose_time_has_passed_goes_out_now(client, marketing_user, win_back, drain, resend):
    customer, _second, third = win_back
    EmailQueueItem.objects.filter(pk=third.pk).update(scheduled_at=timezone.now() - timedelta(hours=1))
    client.force_login(marketing_user)

    customer_action(client, customer, item_id=third.pk, reason="late but wanted")
    drain()

    assert copy_of(third).status == QueueStatus.SENT


def queue_action(client, action, items, **confirm):
    data = {"action": action, "_selected_action": [item.pk for item in items], **confirm}
    return client.post(reverse("admin:automations_emailqueueitem_changelist"), data)


def test_the_queue_page_resends_after_a_confirmation_page_that_says_what_will_happen(
    client, marketing_user, win_back, drain, resend
):
    customer, second, third = win_back
    client.force_login(marketing_user)

    page = queue_action(client, "resend_after_review", [third, second])
    assert page.status_code == 200
    text = page.content.decode()
    assert f"Goes back into its sequence at its own time, {third.scheduled_at:%Y-%m-%d %H:%M} UTC" in text
    assert "Pending: nothing to resend, left as it is." in text
    assert not EmailQueueItem.objects.filter(step=third.step).exclude(pk=third.pk).exists()  # nothing done yet

    key = text.split('name="request_key" value="', 1)[1].split('"', 1)[0]
    done = queue_action(client, "resend_after_review", [third, second], confirm="yes", reason="fixed", request_key=key)
    assert done.status_code == 302
    drain()

    copy = copy_of(third)
    assert copy.status == QueueStatus.PENDING and copy.scheduled_at == third.scheduled_at
    assert len(resend.delivered) == 1
    assert StaffAction.objects.get(customer=customer, action="email_resend").reason == "fixed"


def test_the_queue_pages_send_now_says_it_sends_ahead_of_time(client, marketing_user, win_back, drain, resend):
    _customer, _second, third = win_back
    client.force_login(marketing_user)

    text = queue_action(client, "send_now", [third]).content.decode()
    assert "AHEAD of its own time" in text and "Sending now skips each email's own time" in text

    key = text.split('name="request_key" value="', 1)[1].split('"', 1)[0]
    queue_action(client, "send_now", [third], confirm="yes", reason="asked", request_key=key)
    drain()

    assert copy_of(third).status == QueueStatus.SENT and len(resend.delivered) == 2


def test_support_still_cannot_resend_from_the_queue(client, support_user, win_back):
    _customer, _second, third = win_back
    client.force_login(support_user)

    response = queue_action(client, "resend_after_review", [third])

    assert "Resend these emails?" not in response.content.decode()  # the action is not offered to Support
    assert (
        "resend_after_review" not in client.get(reverse("admin:automations_emailqueueitem_changelist")).content.decode()
    )
    assert not EmailQueueItem.objects.filter(step=third.step).exclude(pk=third.pk).exists()
