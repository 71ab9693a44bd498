from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from customers.events import domain_event_dispatch, domain_event_publish
from devtools.fakes.webhook_receiver import FakeWebhookReceiver
from tests.customers.factories import CustomerFactory
from webhooks import services
from webhooks.addresses import UnsafeWebhookUrl
from webhooks.models import DeliveryStatus, OutboundDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ALL_TYPES = ["customer.purchase", "customer.churned", "customer.at_risk", "payment.failed", "payment.recovered"]


@pytest.fixture
def receiver():
    with FakeWebhookReceiver() as server:
        yield server


@pytest.fixture
def endpoint(receiver):
    endpoint = services.endpoint_create(url=f"{receiver.url}/hooks", event_types=ALL_TYPES, description="panel")
    receiver.secret = endpoint.secret
    return endpoint


@pytest.fixture
def lifecycle(django_capture_on_commit_callbacks):
    """A lifecycle change, dispatched as the task queue would after commit (sends run inline: Q sync mode)."""
    counter = iter(range(1, 10_000))

    def change(customer, to_stage="purchase", name="customer.stage_changed", payload=None):
        with django_capture_on_commit_callbacks(execute=True):
            event, _ = domain_event_publish(
                name=name,
                key=f"test:{next(counter)}",
                customer=customer,
                payload=payload if payload is not None else {"from": "trial", "to": to_stage, "cause": "test"},
            )
        with django_capture_on_commit_callbacks(execute=True):
            domain_event_dispatch(event_id=event.pk)
        return event

    return change


def time_passes():
    OutboundDelivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1), lease_expires_at=None
    )


def send_due(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for delivery_id in services.deliveries_due_ids():
            services.delivery_send(delivery_id=delivery_id)


def test_lifecycle_change_is_delivered_signed(receiver, endpoint, lifecycle):
    customer = CustomerFactory(stripe_customer_id="cus_1")
    event = lifecycle(customer, to_stage="purchase")
    [request] = receiver.requests
    # The reference library accepts our signature (the receiver verified it too, or it would have answered 400).
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["type"] == "customer.purchase"
    assert payload["data"]["customer"] == {
        "id": customer.pk,
        "email": customer.email,
        "stripe_customer_id": "cus_1",
        "discord_user_id": "",
        "lifecycle_stage": customer.lifecycle_stage,
    }
    assert payload["data"]["sequence"] == event.pk
    assert set(payload) == {"type", "timestamp", "data"}
    assert request.header("webhook-id") == f"msg_modready_{event.pk}"
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempt_log.get().status_code == 204


def test_unsubscribed_types_and_other_events_are_not_sent(receiver, endpoint, lifecycle):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(event_types=["customer.churned"])
    lifecycle(CustomerFactory(), to_stage="purchase")
    lifecycle(CustomerFactory(), name="subscription.created", payload={})
    assert receiver.requests == []


def test_a_win_back_campaign_ending_is_not_sent_as_a_second_churn(receiver, endpoint, lifecycle):
    """customers/lifecycle.py: win_back -> churned means the campaign ended; the subscription ended long before."""
    customer = CustomerFactory()
    lifecycle(customer, payload={"from": "win_back", "to": "churned", "cause": "Win-back ended without a return"})
    lifecycle(customer, payload={"from": "at_risk", "to": "churned", "cause": "subscription canceled"})
    assert [Webhook(endpoint.secret).verify(r.body, r.headers)["type"] for r in receiver.requests] == [
        "customer.churned"
    ]
    assert receiver.requests[0].json()["data"]["details"]["from"] == "at_risk"


def test_dispatching_twice_delivers_once(receiver, endpoint, lifecycle, django_capture_on_commit_callbacks):
    event = lifecycle(CustomerFactory())
    services.deliveries_create_for_event(event=event)
    assert OutboundDelivery.objects.count() == 1 and len(receiver.requests) == 1


def test_500_is_retried_with_the_same_id_on_the_schedule(
    receiver, endpoint, lifecycle, django_capture_on_commit_callbacks
):
    receiver.fail_next(500)
    before = timezone.now()
    lifecycle(CustomerFactory())
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 500
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 4 <= wait <= 6.5  # 5 s +- 10 % jitter
    time_passes()
    send_due(django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2
    first, second = receiver.requests
    assert first.header("webhook-id") == second.header("webhook-id")
    assert first.body == second.body
    assert [a.status_code for a in delivery.attempt_log.order_by("id")] == [500, 204]


def test_timeout_is_retried(receiver, endpoint, lifecycle, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOKS_TIMEOUT = 1
    receiver.latency = 1.5
    lifecycle(CustomerFactory())
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert "Timeout" in delivery.attempt_log.get().error
    receiver.latency = 0
    time_passes()
    send_due(django_capture_on_commit_callbacks)
    assert OutboundDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_retry_after_is_honoured(receiver, endpoint, lifecycle):
    receiver.fail_next(429, retry_after=120)
    before = timezone.now()
    lifecycle(CustomerFactory())
    delivery = OutboundDelivery.objects.get()
    assert (delivery.next_attempt_at - before).total_seconds() >= 119


def test_redirects_are_not_followed(receiver, endpoint, lifecycle):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"{receiver.url}/moved")
    lifecycle(CustomerFactory())
    assert [r.path for r in receiver.requests] == ["/moved"]
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and "Redirect" in delivery.last_error


def test_410_disables_the_endpoint(receiver, endpoint, lifecycle):
    receiver.fail_next(410)
    lifecycle(CustomerFactory())
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "410" in endpoint.disabled_reason
    lifecycle(CustomerFactory())
    assert len(receiver.requests) == 1  # nothing more goes to a disabled endpoint
    assert OutboundDelivery.objects.get().status == DeliveryStatus.CANCELLED


def test_gives_up_after_the_schedule(receiver, endpoint, lifecycle, django_capture_on_commit_callbacks):
    receiver.fail_next(503, times=len(services.RETRY_SCHEDULE) + 1)
    lifecycle(CustomerFactory())
    for _ in services.RETRY_SCHEDULE:
        time_passes()
        send_due(django_capture_on_commit_callbacks)
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempt_log.count() == len(services.RETRY_SCHEDULE) + 1


def test_one_customers_changes_arrive_in_order(receiver, endpoint, lifecycle, django_capture_on_commit_callbacks):
    customer, other = CustomerFactory(), CustomerFactory()
    receiver.fail_next(500)
    purchase = lifecycle(customer, to_stage="purchase")  # fails, retry pending
    churn = lifecycle(customer, to_stage="churned")  # must wait behind the purchase
    lifecycle(other, to_stage="purchase")  # another customer is not held up
    assert [p["data"]["customer"]["id"] for p in receiver.accepted] == [other.pk]
    time_passes()
    send_due(django_capture_on_commit_callbacks)
    mine = [p for p in receiver.accepted if p["data"]["customer"]["id"] == customer.pk]
    assert [(p["type"], p["data"]["sequence"]) for p in mine] == [
        ("customer.purchase", purchase.pk),
        ("customer.churned", churn.pk),
    ]


def test_replay_sends_the_same_message_again(receiver, endpoint, lifecycle, django_capture_on_commit_callbacks):
    lifecycle(CustomerFactory())
    delivery = OutboundDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_replay(delivery_ids=[delivery.pk]) == 1
    first, second = receiver.requests
    assert first.header("webhook-id") == second.header("webhook-id") and first.body == second.body
    assert len(receiver.accepted) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "ftp://example.com/hooks",
    ],
)
def test_private_addresses_are_refused_in_production(settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeWebhookUrl):
        services.endpoint_create(url=url, event_types=ALL_TYPES)


def test_plain_http_is_refused_in_production(settings):
    settings.WEBHOOKS_ALLOW_HTTP = False
    with pytest.raises(UnsafeWebhookUrl):
        services.endpoint_create(url="http://127.0.0.1/hooks", event_types=ALL_TYPES)


def test_address_is_checked_again_before_each_send(receiver, endpoint, lifecycle, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    lifecycle(CustomerFactory())
    assert receiver.requests == []
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert "non-public address" in delivery.attempt_log.get().error


def test_an_answer_that_outlived_its_lease_does_not_undo_the_worker_that_took_over(receiver, endpoint, lifecycle):
    receiver.fail_next(500)
    lifecycle(CustomerFactory())
    delivery = OutboundDelivery.objects.get()
    stale_lease = timezone.now() - timedelta(seconds=5)  # the lease a slow first worker held, long expired
    # Meanwhile a second worker took the delivery over and it succeeded.
    OutboundDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SUCCEEDED, lease_expires_at=None)

    late = services.delivery_record(
        delivery_id=delivery.pk, outcome={"status_code": 500, "error": "", "response_body": ""}, lease=stale_lease
    )

    delivery.refresh_from_db()
    assert late.status == delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1  # the late answer is logged, not counted as the delivery's attempt
    assert [a.status_code for a in delivery.attempt_log.order_by("id")] == [500, 500]
