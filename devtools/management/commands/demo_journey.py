"""`manage.py demo_journey`: watch one customer's journey live, offline, without a Stripe account.

A subscription goes through signup, a failed payment, its recovery and a cancellation. Each step changes the Stripe
stand-in's state and posts Stripe's signed events to the real webhook endpoint: over HTTP to the server bin/run
started (the cluster then processes them as it would Stripe's), or, with no server running, to the same view in this
process (tasks then run here, synchronously). The emails land in the local outbox.
"""

import io
import json
import time
from datetime import datetime

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from automations.models import EmailQueueItem, QueueStatus
from billing.models import EventProcessingStatus, StripeEventProcessing
from customers.models import Customer, DomainEvent
from devtools.fakes.stripe.objects import signature_header
from devtools.journey import journey_steps
from devtools.models import OutboxEmail

WEBHOOK_PATH = "/api/webhooks/stripe"
PROCESSING_TIMEOUT = 90


class Command(BaseCommand):
    help = (
        "Play one subscription through signup, a failed payment, recovery and cancellation against the Stripe stand-in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pace", type=float, default=4.0, help="Seconds to pause after each step (default 4).")
        parser.add_argument("--email", default="", help="The customer's email (default: a new one each run).")
        parser.add_argument("--name", default="Jordan Journey")
        parser.add_argument("--url", default="", help="The running server (default: SITE_URL).")
        parser.add_argument("--in-process", action="store_true", help="Use the webhook view in this process.")

    def handle(self, *args, pace: float, email: str, name: str, url: str, in_process: bool, **options):
        if not getattr(settings, "STRIPE_STANDIN", False):
            raise CommandError(
                "demo_journey plays against the local Stripe stand-in, which config.settings.local uses only when no "
                "Stripe key (STRIPE_TEST_SECRET_KEY, STRIPE_LIVE_SECRET_KEY, STRIPE_API_HOST) is set."
            )
        self.base = (url or settings.SITE_URL).rstrip("/")
        self.secret = settings.STRIPE_WEBHOOK_SECRET
        email = email or f"jordan.{int(time.time())}@example.com"
        self.standin = None
        try:
            self._play(email=email, name=name, pace=pace, in_process=in_process)
        finally:
            if self.standin is not None:
                self.standin.stop()

    def _play(self, *, email: str, name: str, pace: float, in_process: bool) -> None:
        if not in_process and self._server_answers():
            stripe, deliver = self._over_http()
        else:
            stripe, deliver = self._in_process()
        steps = journey_steps(stripe, email=email, name=name)
        for number, step in enumerate(steps, start=1):
            started = timezone.now()
            self.stdout.write(self.style.MIGRATE_HEADING(f"\nStep {number}/{len(steps)}: {step.title}"))
            self.stdout.write(f"  {step.what}")
            events = step.play()
            for event in events:
                status = deliver(event)
                self.stdout.write(f"  Stripe -> POST {self.base}{WEBHOOK_PATH}  {event['type']}  ({status})")
            self._wait_processed([event["id"] for event in events])
            self._wait_emails_sent(email=email)
            time.sleep(max(0.0, pace))
            self._report(email=email, since=started)
        self.stdout.write(
            self.style.SUCCESS(f"\nDone. Everything above stays in the admin: {self.base}/admin/ (customer {email}).")
        )

    # delivery -------------------------------------------------------------------------------------------------------
    def _server_answers(self) -> bool:
        try:
            requests.get(f"{self.base}/healthz", timeout=3)
        except requests.RequestException:
            return False
        return True

    def _over_http(self):
        from devtools.fakes.stripe.standin import StandInClient

        stripe = StandInClient(url=settings.STRIPE_API_HOST)
        if not stripe.reachable():
            raise CommandError(
                f"The server at {self.base} answers, but the Stripe stand-in at {settings.STRIPE_API_HOST} does not. "
                "bin/run serves it when no Stripe key is set; is the server running with other settings?"
            )
        self.stdout.write(f"Playing against the running server at {self.base} and the stand-in at {stripe.url}.")
        session = requests.Session()

        def deliver(event: dict) -> str:
            body = json.dumps(event).encode()
            response = session.post(
                f"{self.base}{WEBHOOK_PATH}",
                data=body,
                headers={"Stripe-Signature": signature_header(body, self.secret), "Content-Type": "application/json"},
                timeout=30,
            )
            if response.status_code != 200:
                raise CommandError(f"The webhook answered {response.status_code}: {response.text[:300]}")
            return f"{response.status_code}"

        return stripe, deliver

    def _in_process(self):
        from django_q.conf import Conf

        from billing.stripe_webhook.view import StripeWebhookView
        from devtools.fakes.stripe.standin import StripeStandIn

        self.stdout.write(f"No server answers at {self.base}: using the webhook view in this process.")
        Conf.SYNC = True  # no cluster here: tasks run as they are enqueued
        call_command("stripe_webhook_endpoint", allow_missing=True, stdout=io.StringIO())
        stripe = StripeStandIn(port=settings.STRIPE_STANDIN_PORT, state_path=settings.VAR_DIR / "stripe-standin.json")
        self.standin = stripe.start()
        factory = RequestFactory()

        def deliver(event: dict) -> str:
            body = json.dumps(event).encode()
            request = factory.post(
                WEBHOOK_PATH,
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": signature_header(body, self.secret)},
            )
            response = StripeWebhookView.as_view()(request)
            if response.status_code != 200:
                raise CommandError(f"The webhook answered {response.status_code}: {response.content[:300]!r}")
            return f"{response.status_code}, in process"

        return stripe, deliver

    # what happened ------------------------------------------------------------------------------------------------
    def _wait_processed(self, event_ids: list[str]) -> None:
        deadline = time.monotonic() + PROCESSING_TIMEOUT
        done = {EventProcessingStatus.PROCESSED, EventProcessingStatus.DEAD}
        while time.monotonic() < deadline:
            statuses = dict(
                StripeEventProcessing.objects.filter(event_id__in=event_ids).values_list("event_id", "status")
            )
            if len(statuses) == len(event_ids) and set(statuses.values()) <= done:
                return
            time.sleep(0.5)
        self.stdout.write(self.style.WARNING("  The events are not processed yet: is the task cluster running?"))

    def _wait_emails_sent(self, *, email: str) -> None:
        """Until what the events started has run: domain events dispatched, due emails out of the queue."""
        deadline = time.monotonic() + PROCESSING_TIMEOUT
        while time.monotonic() < deadline:
            now = timezone.now()
            waiting = (
                DomainEvent.objects.filter(customer__email__iexact=email, dispatched_at__isnull=True)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .exists()
                or EmailQueueItem.objects.filter(customer__email__iexact=email)
                .filter(Q(status=QueueStatus.SENDING) | Q(status=QueueStatus.PENDING, next_attempt_at__lte=now))
                .exists()
            )
            if not waiting:
                return
            time.sleep(0.5)

    def _report(self, *, email: str, since: datetime) -> None:
        customer = Customer.objects.filter(email__iexact=email).first()
        if customer is None:
            self.stdout.write("  No customer yet.")
            return
        subscription = customer.subscriptions.order_by("-id").first()
        status = f", subscription {subscription.status}" if subscription is not None else ""
        self.stdout.write(f"  Stage: {customer.get_lifecycle_stage_display()}{status}")
        for event in customer.timeline_events.filter(recorded_at__gte=since).order_by("occurred_at", "id"):
            self.stdout.write(f"  Timeline: {event.summary or event.kind}")
        emails = [e for e in OutboxEmail.objects.filter(created_at__gte=since) if email.lower() in map(str.lower, e.to)]
        outbox = f"{self.base}{reverse('admin:devtools_outboxemail_changelist')}"
        for sent in emails:
            self.stdout.write(f'  Email: "{sent.subject}"  {outbox}{sent.pk}/change/')
        change = reverse("admin:customers_customer_change", args=[customer.pk])
        self.stdout.write(f"  Look: {self.base}{change}  and the outbox {outbox}")
