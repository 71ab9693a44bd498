"""The queue against the fake Resend: batches, idempotency keys, 429/5xx/timeouts, bad emails, crashes, two workers."""

import itertools
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from automations.batch_claim import DrainResult, batch_claim_new
from automations.installation import installation_id
from automations.models import (
    AutomationRule,
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    EmailTemplate,
    Enrollment,
    QueueStatus,
)
from automations.transports import transport_get
from customers.models import Customer
from tests.automations.factories import enrollment_with_emails
from tests.customers.factories import CustomerFactory

from .conftest import make_due, subscription_payload

pytestmark = pytest.mark.django_db


def queue_welcomes(count, *, rule_name="Welcome", **customer_fields):
    """`count` customers enrolled in a rule, with all their emails due now (no dispatch side effects)."""
    rule = AutomationRule.objects.get(name=rule_name)
    customers = CustomerFactory.create_batch(count, **customer_fields)
    # Enrolled as enrollment_start leaves it, without an event whose dispatch or drain could send behind the test.
    for customer in customers:
        enrollment_with_emails(rule=rule, customer=customer, context=subscription_payload(f"sub_{customer.pk}"))
    make_due()
    return customers


def test_due_emails_go_out_in_one_batch_call_with_ids_recorded(resend, drain):
    customers = queue_welcomes(3)  # 6 emails: welcome + setup tips each

    result = drain()

    assert result.sent == 6
    assert len(resend.requests_to("POST", "/emails/batch")) == 1
    assert sorted(e.to[0] for e in resend.delivered) == sorted(c.email for c in customers for _ in range(2))
    items = EmailQueueItem.objects.all()
    assert {i.status for i in items} == {QueueStatus.SENT}
    assert {i.provider_message_id for i in items} == {e.id for e in resend.delivered}
    batch = EmailBatch.objects.get()
    # Our key, namespaced by this installation (another install sharing the Resend team counts the same ids).
    assert batch.idempotency_key == f"email-batch:{batch.pk}"
    assert resend.requests[0].header("idempotency-key") == f"{installation_id()}:email-batch:{batch.pk}"


def test_a_single_email_goes_through_anymail_with_its_own_idempotency_key(resend, drain):
    queue_welcomes(1)
    EmailQueueItem.objects.filter(step__order=2).update(next_attempt_at=timezone.now() + timedelta(days=1))

    drain()

    (request,) = resend.requests
    item = EmailQueueItem.objects.get(step__order=1)
    assert request.path == "/emails"
    assert request.header("idempotency-key") == f"{installation_id()}:{item.idempotency_key}"
    assert item.status == QueueStatus.SENT and item.provider_message_id == resend.delivered[0].id


def test_429_honours_retry_after_and_pauses_the_drain(resend, drain):
    queue_welcomes(2)
    resend.fail_next(429, retry_after=2)
    pauses = []

    def sleep(seconds):  # time passes while the drain waits
        pauses.append(seconds)
        make_due()

    result = drain(sleep=sleep)

    # The shared call slot holds every sender for the Retry-After (the clock does not move here, so the next
    # reservation still finds the hold: what matters is that the first wait is the provider's 2 s).
    assert pauses[0] == pytest.approx(2.0, abs=0.1)
    assert result.rate_limited == 1
    assert result.sent == 4
    assert len(resend.delivered) == 4
    assert EmailBatch.objects.get().attempts == 0  # a rate limit is not a failure of the email


def test_5xx_retries_with_exponential_backoff_under_the_same_key(resend, drain, settings):
    queue_welcomes(2)
    resend.fail_next(503, times=2)

    first = drain()
    batch = EmailBatch.objects.get()
    assert first.retries == 1 and first.sent == 0
    assert batch.attempts == 1
    assert timedelta(seconds=29) < batch.lease_expires_at - timezone.now() <= timedelta(seconds=30)

    make_due()
    drain()
    batch.refresh_from_db()
    assert batch.attempts == 2
    assert timedelta(seconds=59) < batch.lease_expires_at - timezone.now() <= timedelta(seconds=60)
    assert EmailQueueItem.objects.filter(status=QueueStatus.SENDING).count() == 4
    assert "503" in EmailQueueItem.objects.first().last_error

    make_due()
    drain()
    assert EmailQueueItem.objects.filter(status=QueueStatus.SENT).count() == 4
    assert {r.header("idempotency-key") for r in resend.requests} == {batch.provider_idempotency_key}
    assert resend.duplicates() == {}


def test_no_answer_within_the_key_window_leaves_the_emails_unconfirmed_never_failed_or_rekeyed(resend, drain, settings):
    settings.AUTOMATIONS_RETRY_WINDOW_SECONDS = 3600
    (customer,) = queue_welcomes(1)
    resend.fail_next(500, times=50)
    drain()
    batch = EmailBatch.objects.get()
    # An hour of 500s later (Resend would forget the key after 24 h; we stop before that):
    EmailBatch.objects.filter(pk=batch.pk).update(first_called_at=timezone.now() - timedelta(seconds=3601))
    make_due()
    result = drain()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.UNCONFIRMED and result.unconfirmed == 2
    items = EmailQueueItem.objects.all()
    assert {i.status for i in items} == {QueueStatus.UNCONFIRMED}
    assert all("may have been delivered" in i.last_error for i in items)
    assert {r.header("idempotency-key") for r in resend.requests} == {batch.provider_idempotency_key}
    make_due()
    drain()
    assert len(resend.requests) == 2  # never tried again, under this key or any other
    assert resend.copies_to(customer.email) == 0


def test_a_timeout_is_retried_with_the_same_key_and_delivers_once(resend, drain):
    queue_welcomes(1)
    EmailQueueItem.objects.filter(step__order=2).delete()
    resend.latency = 1.5  # longer than the 1 s read timeout: we cannot know whether Resend accepted it

    result = drain()
    assert result.retries == 1
    time.sleep(0.8)
    assert len(resend.delivered) == 1  # Resend did accept it, after we stopped waiting

    resend.latency = 0
    make_due()
    drain()
    item = EmailQueueItem.objects.get()
    assert item.status == QueueStatus.SENT
    assert resend.idempotent_repeats == 1
    assert len(resend.delivered) == 1
    assert item.provider_message_id == resend.delivered[0].id


def test_a_dropped_connection_is_retried(resend, drain):
    queue_welcomes(1)
    resend.drop_next()
    drain()
    make_due()
    drain()
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert len(resend.delivered) == 2


def test_a_4xx_refusal_of_a_single_email_fails_it_at_once(resend, drain):
    queue_welcomes(1)
    EmailQueueItem.objects.filter(step__order=2).delete()
    resend.fail_next(422, body={"statusCode": 422, "name": "validation_error", "message": "Invalid `from` field"})

    drain()
    make_due()
    drain()

    item = EmailQueueItem.objects.get()
    assert item.status == QueueStatus.FAILED
    assert "Invalid `from` field" in item.last_error
    assert len(resend.requests) == 1


def test_a_batch_refused_for_one_bad_address_is_split_and_the_good_emails_go(resend, drain):
    customers = queue_welcomes(4)
    # An address Django accepts but Resend refuses (no dot in the domain): only the provider can tell.
    Customer.objects.filter(pk=customers[2].pk).update(email="player@localhost")

    drain()

    statuses = {i.recipient: i.status for i in EmailQueueItem.objects.all()}
    assert statuses.pop("player@localhost") == QueueStatus.FAILED
    assert set(statuses.values()) == {QueueStatus.SENT}
    assert len(resend.delivered) == 6
    assert resend.duplicates() == {}
    assert EmailBatch.objects.filter(status=BatchStatus.SPLIT).exists()


def test_a_template_error_or_invalid_address_fails_that_email_alone(resend, drain):
    customers = queue_welcomes(3)
    EmailTemplate.objects.filter(name="Setup tips").update(html_body="{{ customer.nonexistent_field }}")
    Customer.objects.filter(pk=customers[0].pk).update(email="not an address")  # e.g. imported from a form
    EmailQueueItem.objects.filter(customer=customers[0], step__order=2).delete()

    result = drain()

    failed = EmailQueueItem.objects.filter(status=QueueStatus.FAILED)
    assert failed.count() == 3  # 2 setup tips + the bad address
    assert all("UndefinedError" in i.last_error for i in failed.filter(step__order=2))
    assert "ValidationError" in failed.get(step__order=1).last_error
    assert result.sent == 2 and len(resend.delivered) == 2


def test_a_crash_after_resend_accepted_and_before_our_commit_sends_nothing_twice(resend, drain, settings):
    queue_welcomes(3)
    transport = transport_get()
    # A worker claims a batch and makes the call... then dies before recording the answer.
    batch, _ = batch_claim_new(worker="doomed", size=100, result=DrainResult())
    transport.send_batch(
        messages=[e["message"] for e in batch.messages], idempotency_key=batch.provider_idempotency_key
    )
    assert len(resend.delivered) == 6
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENDING}

    drain()  # the lease has not run out: the batch belongs to the dead worker for now
    assert EmailQueueItem.objects.filter(status=QueueStatus.SENT).count() == 0

    make_due()  # the lease runs out
    drain()

    assert EmailQueueItem.objects.filter(status=QueueStatus.SENT).count() == 6
    assert len(resend.delivered) == 6
    assert resend.idempotent_repeats == 1
    assert set(EmailQueueItem.objects.values_list("provider_message_id", flat=True)) == {e.id for e in resend.delivered}


@pytest.mark.django_db(transaction=True)
def test_claiming_skips_emails_another_worker_holds(resend):
    queue_welcomes(3)
    held = threading.Event()
    release = threading.Event()

    def other_worker():
        from django.db import connections, transaction

        try:
            with transaction.atomic():
                locked = list(EmailQueueItem.objects.select_for_update().order_by("next_attempt_at", "id")[:2])
                assert len(locked) == 2
                held.set()
                release.wait(5)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    held.wait(5)
    try:
        batch, _ = batch_claim_new(worker="w2", size=100, result=DrainResult())
    finally:
        release.set()
        thread.join()
    assert len(batch.messages) == 4


@pytest.mark.django_db(transaction=True)
def test_two_workers_draining_at_once_never_send_the_same_email(resend, settings):
    settings.AUTOMATIONS_BATCH_SIZE = 5
    queue_welcomes(20)  # 40 emails
    resend.latency = 0.03
    results = []

    def worker(name):
        from django.db import connections

        from automations.drain import email_queue_process

        try:
            results.append(email_queue_process(worker=name, time_budget=20, sleep=lambda s: None))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r.sent for r in results) == 40
    assert all(r.sent > 0 for r in results)  # both really took part
    assert len(resend.delivered) == 40
    assert resend.duplicates() == {}
    assert len({r.header("idempotency-key") for r in resend.requests}) == len(resend.requests)
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert connection.vendor == "postgresql"
    assert Enrollment.objects.filter(status="completed").count() == 20


def dunning_in_flight(resend, drain, publish_fail):
    """A first dunning email claimed into a batch whose call failed; returns the customer."""
    from .conftest import payment_failed_payload

    customer = CustomerFactory()
    rule = AutomationRule.objects.get(name="Dunning")
    enrollment_with_emails(rule=rule, customer=customer, context=payment_failed_payload())
    publish_fail()
    drain()
    assert EmailQueueItem.objects.get(step__order=1).status == QueueStatus.SENDING
    return customer


def test_a_recovery_during_a_rate_limit_wait_takes_the_dunning_email_out(resend, drain):
    from automations.services.enrollments import enrollment_exit

    customer = dunning_in_flight(resend, drain, lambda: resend.fail_next(429, retry_after=60))
    enrollment_exit(enrollment=Enrollment.objects.get(customer=customer), reason="payment.recovered")
    make_due()
    drain()

    item = EmailQueueItem.objects.get(step__order=1)
    assert item.status == QueueStatus.CANCELLED
    assert "Sequence ended" in item.last_error
    assert resend.delivered == []
    assert len(resend.requests) == 1


def test_a_batch_resend_may_have_accepted_is_resent_as_it_was_even_after_a_recovery(resend, drain):
    from automations.services.enrollments import enrollment_exit

    def timeout():
        resend.latency = 1.5

    customer = dunning_in_flight(resend, drain, timeout)
    time.sleep(0.8)
    resend.latency = 0
    enrollment_exit(enrollment=Enrollment.objects.get(customer=customer), reason="payment.recovered")
    make_due()
    drain()

    # The email did go out during the timeout; taking it out now would only lose the record of it.
    item = EmailQueueItem.objects.get(step__order=1)
    assert item.status == QueueStatus.SENT
    assert [d.message["to"] for d in resend.delivered] == [[customer.email]]
    assert resend.idempotent_repeats == 1
    assert EmailQueueItem.objects.filter(status=QueueStatus.CANCELLED).count() == 2


def test_the_management_command_drains_the_queue(resend, capsys):
    from django.core.management import call_command

    queue_welcomes(2)
    call_command("process_email_queue", "--until-done")
    assert "sent=4" in capsys.readouterr().out
    assert len(resend.delivered) == 4


def test_the_queue_schedule_is_declared_every_two_minutes():
    from core.schedules import declared_jobs

    (job,) = [j for j in declared_jobs() if j.name == "automations.process-email-queue"]
    assert job.cron == "*/2 * * * *"
    from django.utils.module_loading import import_string

    assert callable(import_string(job.func))


def test_local_run_without_resend_puts_emails_in_the_local_outbox(settings, drain):
    from devtools.models import OutboxEmail

    settings.EMAIL_BACKEND = "devtools.outbox.EmailBackend"
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "django"
    queue_welcomes(1)
    drain()
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert any(email.subject.startswith("Welcome to ModReady") for email in OutboxEmail.objects.all())


def test_workers_share_one_pace_under_the_providers_rate_limit():
    from automations.pacing import provider_slot_reserve

    waits = [provider_slot_reserve(provider="resend", interval=0.2) for _ in range(4)]
    # Each reservation takes the next free 200 ms slot, whoever asks: 0, 0.2, 0.4, 0.6 s from now.
    assert waits[0] == pytest.approx(0, abs=0.05)
    assert [round(b - a, 1) for a, b in itertools.pairwise(waits)] == [0.2, 0.2, 0.2]


def test_paced_sending_stays_under_the_rate_limit(resend, settings, drain):
    settings.AUTOMATIONS_RESEND_REQUESTS_PER_SECOND = 5
    settings.AUTOMATIONS_BATCH_SIZE = 2
    resend.rate_limit(per_second=5)
    queue_welcomes(6)  # 12 emails, 6 calls

    result = drain(sleep=time.sleep)

    assert result.sent == 12
    assert resend.rate_limited_count == 0
    arrivals = [r.received_at for r in resend.requests]
    assert arrivals[-1] - arrivals[0] >= 5 * 0.2


def test_an_email_goes_to_the_address_the_customer_has_when_it_is_sent(resend, drain):
    (customer,) = queue_welcomes(1)
    customer.email = "new-address@example.com"
    customer.save(update_fields=["email"])
    drain()
    assert {e.to[0] for e in resend.delivered} == {"new-address@example.com"}
    assert set(EmailQueueItem.objects.values_list("recipient", flat=True)) == {"new-address@example.com"}


def test_a_slow_workers_late_failure_does_not_override_the_worker_that_took_over(resend):
    from automations.batch_claim import batch_claim_in_flight
    from automations.batch_outcome import batch_record_failure
    from integrations.resend.client import ResendError

    queue_welcomes(1)
    batch, _ = batch_claim_new(worker="slow", size=100, result=DrainResult())
    make_due()  # the slow worker's lease runs out while its call hangs
    taken = batch_claim_in_flight(worker="fresh")
    assert taken.pk == batch.pk and taken.possibly_accepted

    batch_record_failure(
        batch=batch, error=ResendError(status=503).as_send_error(), result=DrainResult(), worker="slow"
    )

    taken.refresh_from_db()
    assert (taken.worker, taken.attempts, taken.call_in_progress) == ("fresh", 0, True)


# --- every answer Resend gives: one copy per email, statuses from the answer --------------------------------------


def wait_until_resend_is_done(resend, timeout=10.0):
    deadline = time.monotonic() + timeout
    while resend.in_progress and time.monotonic() < deadline:
        time.sleep(0.05)


def test_timeout_then_409_in_progress_then_success_gives_one_copy(resend, drain):
    customers = queue_welcomes(2)  # 4 emails in one batch
    resend.processing_gate = threading.Event()  # Resend works on it longer than our 1 s read timeout

    first = drain()
    assert first.retries == 1 and first.sent == 0
    make_due()
    second = drain()  # Resend is still working on the first call: 409 concurrent_idempotent_requests
    assert second.retries == 1 and second.sent == 0
    assert resend.requests[1].header("idempotency-key") == resend.requests[0].header("idempotency-key")
    resend.processing_gate.set()  # Resend finishes the first call: it sent the batch
    wait_until_resend_is_done(resend)
    make_due()
    third = drain()  # Resend's first answer, replayed

    assert third.sent == 4
    assert [resend.copies_to(c.email) for c in customers] == [2, 2]  # welcome + setup tips, once each
    assert resend.duplicates() == {}
    batch = EmailBatch.objects.get()
    assert batch.status == BatchStatus.SENT and batch.attempts == 2 and batch.possibly_accepted
    assert len({r.header("idempotency-key") for r in resend.requests}) == 1
    assert len({r.body for r in resend.requests}) == 1  # byte for byte the same request every time
    assert set(EmailQueueItem.objects.values_list("provider_message_id", flat=True)) == {e.id for e in resend.delivered}


def test_504_after_acceptance_and_a_cancel_during_the_backoff_gives_one_copy_and_honest_statuses(resend, drain):
    from automations.services.enrollments import enrollment_exit

    paid, other = queue_welcomes(2)
    resend.accept_then_fail(504)  # Resend sent the batch; the gateway lost the answer

    drain()
    assert len(resend.delivered) == 4
    # The customer cancels during the backoff: the wish is recorded, the sequence ends, the batch stays as it is.
    enrollment_exit(enrollment=Enrollment.objects.get(customer=paid), reason="subscription.canceled")
    make_due()
    drain()

    assert resend.copies_to(paid.email) == 2 and resend.copies_to(other.email) == 2
    assert resend.duplicates() == {} and resend.idempotent_repeats == 1
    cancelled = EmailQueueItem.objects.filter(customer=paid)
    assert {i.status for i in cancelled} == {QueueStatus.SENT}  # it went out, and says so
    assert all("sequence ended" in i.last_error for i in cancelled)
    assert Enrollment.objects.get(customer=paid).status == "exited"
    assert {i.status for i in EmailQueueItem.objects.filter(customer=other)} == {QueueStatus.SENT}
    assert len({r.header("idempotency-key") for r in resend.requests}) == 1
    assert not EmailBatch.objects.filter(status=BatchStatus.SPLIT).exists()


def test_a_revoked_key_pauses_every_worker_and_resumes_with_nothing_failed(resend, drain, client, settings):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from automations.models import SendingPause

    customers = queue_welcomes(3)
    resend.revoke_key()

    paused = drain()
    assert "API key" in paused.paused
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.PENDING}
    assert EmailBatch.objects.get().status == BatchStatus.RELEASED
    pause = SendingPause.objects.get()
    assert pause.status_code == 403 and pause.error_name == "invalid_api_key"
    calls = len(resend.requests)
    drain(worker="another-worker")  # every worker sees the pause: no call until the probe is due
    assert len(resend.requests) == calls

    owner = get_user_model().objects.create_superuser("owner", "owner@modready.example", "pw-owner-123")
    client.force_login(owner)
    for page in ("admin:automations_emailqueueitem_changelist", "admin:automations_analytics"):
        assert "Resend refuses our API key" in client.get(reverse(page)).content.decode()

    resend.restore_key()  # staff put the new key in place
    SendingPause.objects.update(next_probe_at=timezone.now())
    result = drain()

    assert result.sent == 6 and not result.paused
    assert not SendingPause.objects.exists()
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert [resend.copies_to(c.email) for c in customers] == [2, 2, 2]
    assert "paused" not in client.get(reverse("admin:automations_emailqueueitem_changelist")).content.decode()


def test_an_unverified_domain_pauses_and_staff_resume_it_from_the_admin(resend, drain, client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from automations.models import SendingPause

    queue_welcomes(1)
    resend.unverify_domain()
    drain()
    pause = SendingPause.objects.get()
    assert "domain" in pause.cause and pause.status_code == 403
    assert not EmailQueueItem.objects.filter(status=QueueStatus.FAILED).exists()

    resend.restore_key()
    owner = get_user_model().objects.create_superuser("owner", "owner@modready.example", "pw-owner-123")
    client.force_login(owner)
    with mock.patch("automations.drain_control.queue_process_enqueue"):
        client.post(
            reverse("admin:automations_sendingpause_changelist"),
            {"action": "resume", "_selected_action": [pause.pk]},
        )
    assert not SendingPause.objects.exists()
    drain()
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}


def test_invalid_idempotent_request_is_shown_and_never_sent_under_a_new_key(resend, drain, caplog, client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    customers = queue_welcomes(2)
    # A worker sends the batch and dies before recording the answer...
    batch, _ = batch_claim_new(worker="doomed", size=100, result=DrainResult())
    transport_get().send_batch(
        messages=[e["message"] for e in batch.messages], idempotency_key=batch.provider_idempotency_key
    )
    # ...and a bug changes the stored payload before the retry (the rule says it never may).
    messages = batch.messages
    messages[0]["message"]["subject"] += " (re-rendered)"
    EmailBatch.objects.filter(pk=batch.pk).update(messages=messages)
    make_due()

    with caplog.at_level("ERROR", logger="automations.batch_outcome"):
        drain()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.UNCONFIRMED and batch.error_name == "invalid_idempotent_request"
    assert any("idempotency key" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    items = EmailQueueItem.objects.all()
    assert {i.status for i in items} == {QueueStatus.UNCONFIRMED}
    assert all("not re-sent under a new key" in i.last_error for i in items)
    make_due()
    drain()
    assert {r.header("idempotency-key") for r in resend.requests} == {batch.provider_idempotency_key}
    assert [resend.copies_to(c.email) for c in customers] == [2, 2]

    owner = get_user_model().objects.create_superuser("owner", "owner@modready.example", "pw-owner-123")
    client.force_login(owner)
    page = client.get(reverse("admin:automations_emailbatch_changelist") + "?error_name=invalid_idempotent_request")
    assert batch.idempotency_key in page.content.decode()


def test_a_422_refusing_the_whole_batch_splits_it_and_each_customer_gets_one_copy(resend, drain):
    customers = queue_welcomes(4)
    Customer.objects.filter(pk=customers[1].pk).update(email="player@localhost")  # only Resend can tell

    drain()

    assert resend.copies_to("player@localhost") == 0
    assert [resend.copies_to(c.email) for c in customers if c.pk != customers[1].pk] == [2, 2, 2]
    assert resend.duplicates() == {}
    assert EmailBatch.objects.filter(status=BatchStatus.SPLIT).exists()
    assert EmailQueueItem.objects.filter(status=QueueStatus.FAILED).count() == 2


def test_a_batch_resend_may_have_accepted_is_never_split_even_when_an_email_in_it_goes_bad(resend, drain):
    customers = queue_welcomes(2)
    resend.fail_next(502)
    drain()
    # The customer's address changes meanwhile: the stored batch still goes exactly as it was.
    Customer.objects.filter(pk=customers[0].pk).update(email="new-address@example.com")
    make_due()
    drain()
    assert len({r.body for r in resend.requests}) == 1
    assert not EmailBatch.objects.filter(status=BatchStatus.SPLIT).exists()
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}


# --- cost per batch and coalesced wake-ups -------------------------------------------------------------------------


def test_a_batch_of_100_costs_the_same_number_of_queries_as_a_batch_of_10(resend, drain):
    from django.test.utils import CaptureQueriesContext

    from billing.models import Subscription

    def queries_to_drain(count):
        customers = queue_welcomes(count)
        for customer in customers[: count // 2]:  # half have a subscription in billing, half only the event
            Subscription.objects.create(customer=customer, stripe_subscription_id=f"sub_{customer.pk}", status="active")
        with CaptureQueriesContext(connection) as queries:
            result = drain()
        assert result.sent == 2 * count and result.batches == 1
        return len(queries)

    assert queries_to_drain(5) == queries_to_drain(50)  # 10 emails, then 100 emails


def test_a_burst_of_wake_ups_puts_one_drain_task_on_the_broker():
    from automations.drain_control import drain_wake_clear, queue_process_enqueue

    with mock.patch("django_q.tasks.async_task") as enqueue:
        for _ in range(500):
            queue_process_enqueue()
        assert enqueue.call_count == 1
        drain_wake_clear()  # the task started: the next wake-up may queue one more for a free slot
        for _ in range(500):
            queue_process_enqueue()
        assert enqueue.call_count == 2


def test_the_task_drain_keeps_going_through_a_retry_wait_instead_of_waiting_for_the_next_run(resend, settings):
    from automations.drain import email_queue_drain

    settings.AUTOMATIONS_RETRY_BASE_SECONDS = 5
    queue_welcomes(2)
    resend.fail_next(503)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        make_due()

    result = email_queue_drain(sleep=sleep)

    assert result.sent == 4 and result.retries == 1
    assert waits == [1.0]  # it looked again after a second (and the retry was due by then)
    assert resend.duplicates() == {}


# --- the fake answers like Resend ----------------------------------------------------------------------------------


def test_the_fake_resend_answers_like_the_real_api(fake_resend):
    import requests

    url = fake_resend.url + "/emails"
    auth = {"Authorization": "Bearer re_test"}
    message = {"from": "a@modready.example", "to": ["b@example.com"], "subject": "Hi", "html": "<p>Hi</p>"}

    first = requests.post(url, json=message, headers={**auth, "Idempotency-Key": "k1"}, timeout=5)
    assert first.status_code == 200 and {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= {
        h.lower() for h in first.headers
    }
    replay = requests.post(url, json=message, headers={**auth, "Idempotency-Key": "k1"}, timeout=5)
    assert replay.json() == first.json() and fake_resend.copies_to("b@example.com") == 1
    other = requests.post(
        url, json={**message, "subject": "Hello"}, headers={**auth, "Idempotency-Key": "k1"}, timeout=5
    )
    assert (other.status_code, other.json()["name"]) == (409, "invalid_idempotent_request")

    fake_resend.processing_delay = 0.5
    slow = threading.Thread(
        target=requests.post, args=(url,), kwargs={"json": message, "headers": {**auth, "Idempotency-Key": "k2"}}
    )
    slow.start()
    time.sleep(0.2)
    busy = requests.post(url, json=message, headers={**auth, "Idempotency-Key": "k2"}, timeout=5)
    slow.join()
    assert (busy.status_code, busy.json()["name"]) == (409, "concurrent_idempotent_requests")
    fake_resend.processing_delay = 0

    fake_resend.accept_then_fail(504)
    lost = requests.post(url, json=message, headers={**auth, "Idempotency-Key": "k3"}, timeout=5)
    assert lost.status_code == 504 and fake_resend.copies_to("b@example.com") == 3  # k1, k2, k3 each once

    fake_resend.revoke_key()
    assert requests.post(url, json=message, headers=auth, timeout=5).json()["name"] == "invalid_api_key"
    fake_resend.restore_key()
    assert requests.post(url, json=message, timeout=5).status_code == 401

    fake_resend.rate_limit(per_second=1, retry_after=2)
    requests.post(url, json=message, headers=auth, timeout=5)
    limited = requests.post(url, json=message, headers=auth, timeout=5)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.headers["ratelimit-limit"] == "1" and limited.headers["ratelimit-remaining"] == "0"

    batch = requests.post(
        fake_resend.url + "/emails/batch", json=[message, {**message, "to": ["x@localhost"]}], headers=auth, timeout=5
    )
    assert batch.status_code in (422, 429)


class _NeverReturned(BaseException):
    """Not an Exception: the drain's own error handling must not swallow it."""


def _call_until_done_or_fail(*arguments, seconds=60):
    """Run the command; fail the test (instead of hanging the suite) if it has not returned after `seconds`."""
    import signal

    from django.core.management import call_command

    def stop(signum, frame):
        raise _NeverReturned

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1)  # and again every second, should one land where it is ignored
    try:
        call_command("process_email_queue", "--until-done", *arguments)
    except _NeverReturned:
        pytest.fail(f"process_email_queue --until-done had not returned after {seconds} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_management_command_until_done_returns_and_says_why_while_sending_is_paused(resend, capsys, settings):
    """It used to loop forever: due emails stay pending while paused, so there was always "work left"."""
    queue_welcomes(2)
    resend.revoke_key()
    settings.AUTOMATIONS_PAUSE_PROBE_SECONDS = 0  # a probe every run: the pause holds because the key stays revoked

    _call_until_done_or_fail("--seconds", "2")

    out = capsys.readouterr().out
    assert "sent=0" in out
    assert "sending is paused" in out and "Resend refuses our API key" in out and "4 due email(s) wait" in out
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.PENDING}


def test_the_management_command_says_so_when_email_delivery_is_disabled(capsys, settings):
    queue_welcomes(1)
    settings.EMAIL_DELIVERY = "disabled"

    _call_until_done_or_fail()

    assert "EMAIL_DELIVERY=disabled" in capsys.readouterr().out
