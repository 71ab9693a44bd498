"""Plays the demo history through the real services, in time order, as production would have lived it.

One loop over a single time line. At each moment the earliest of these happens, with the clock set to it
(devtools.clock.as_of):

- a journey's step: the customer signs up (customers.services), or Stripe changes their objects and sends the
  events, which go through billing's webhook path below the signature check (`stripe_event_receive`, the same
  store the view uses, then the processing task: dj-stripe's sync against the fake Stripe answered in-process, billing's
  handlers, domain events, enrollments);
- the email queue's run when an email falls due (automations.drain.email_queue_process, as the every-2-minutes
  schedule would, only exactly on time), sending through Django's email backend as the local run does;
- a tracking event from Resend for an email that went out (delivered, opened, clicked, bounced): Resend's payload,
  parsed by anymail's Resend webhook view and handed to the same `tracking` signal the view sends;
- the daily schedules that shape the history (customers.onboarding-settle).

Tasks the services enqueue run in-process, in the order they were enqueued, as soon as the enqueuing work commits:
InlineBroker stands in for the task cluster during the seed (no result rows, no waiting).
"""

import heapq
import itertools
import logging
import pydoc
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from anymail.signals import tracking
from django.db.models import Min
from django.test.utils import override_settings
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from automations.models import EmailQueueItem, QueueStatus
from billing.stripe_webhook import endpoint as stripe_webhook_endpoint
from billing.stripe_webhook import store as stripe_webhook_store
from customers import services
from customers.tasks import onboarding_settle_task
from devtools import clock
from devtools.demo.cancel_page import offers_install
from devtools.demo.journeys import Journey, Play
from devtools.demo.stripe_world import StripeWorld
from devtools.demo.tickets import plan_tickets
from devtools.fakes.stripe.in_process import installed
from devtools.fakes.stripe.server import FakeStripe

logger = logging.getLogger(__name__)

PLANS = {
    "starter": ("Starter Server", 699, "month"),
    "pro": ("Pro Server", 1499, "month"),
    "ultimate": ("Ultimate Server", 2999, "month"),
    "pro_yearly": ("Pro Server (yearly)", 14990, "year"),
}
DEMO_WEBHOOK_URL = "http://127.0.0.1:8000/api/webhooks/stripe"


# --- tasks, run in-process -----------------------------------------------------------------------------------------


class InlineBroker(Broker):
    """django-q2 broker for the seed's process: a task runs right after the work that enqueued it, in FIFO order."""

    pending: deque = deque()
    running = False
    failures: list[str] = []

    def enqueue(self, task: str) -> str:
        InlineBroker.pending.append(task)
        if not InlineBroker.running:
            InlineBroker.running = True
            try:
                while InlineBroker.pending:
                    _run(SignedPackage.loads(InlineBroker.pending.popleft()))
            finally:
                InlineBroker.running = False
        return "inline"

    def dequeue(self):
        return None

    def queue_size(self) -> int:
        return len(InlineBroker.pending)


def _run(task: dict) -> None:
    func = task["func"] if callable(task["func"]) else pydoc.locate(task["func"])
    try:
        func(*task.get("args", ()), **task.get("kwargs", {}))
    except Exception as exc:  # a worker logs a failed task and goes on; the seed reports them at the end
        logger.exception("Demo task %s failed", task.get("name"))
        InlineBroker.failures.append(f"{task.get('name')}: {type(exc).__name__}: {exc}")


@contextmanager
def tasks_inline() -> Iterator[None]:
    saved = (Conf.BROKER_CLASS, Conf.SYNC, list(stripe_webhook_store._broker))
    Conf.BROKER_CLASS, Conf.SYNC = f"{__name__}.InlineBroker", False
    stripe_webhook_store._broker.clear()  # its cached broker is the cluster's; the seed's tasks run here
    # The email drain a task runs waits for emails due within its budget; on a replayed clock nothing falls due
    # while it waits, so the seed gives it no budget to wait in (the player runs the queue when emails fall due).
    try:
        with override_settings(AUTOMATIONS_DRAIN_SECONDS=2):
            yield
    finally:
        Conf.BROKER_CLASS, Conf.SYNC = saved[0], saved[1]
        stripe_webhook_store._broker[:] = saved[2]


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Thousands of "request to Stripe" and "task enqueued" lines would bury the login bin/run prints last."""
    names = ["stripe", "django-q", "djstripe", "billing", "automations", "customers", "integrations"]
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# --- the player ----------------------------------------------------------------------------------------------------


@dataclass(order=True)
class _Moment:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class Player:
    def __init__(self, *, today: datetime, seed: int = 12):
        self.today = today
        self.stripe = FakeStripe()  # never served: answered in-process while the history plays
        self.world = StripeWorld(self.stripe)
        self.rng = random.Random(seed)
        self.heap: list[_Moment] = []
        self.seq = itertools.count()
        self.endpoint = None
        self.sent_seen: set[int] = set()
        self.sent_since: datetime | None = None
        self.next_daily: datetime | None = None
        self.stripe_events = 0
        self.tracking_events = 0
        self.seconds: dict[str, float] = {}
        self.next_due: datetime | None = None  # of the email queue; None: ask the database

    def at(self, moment: datetime, run: Callable[[], None], *, kind: str) -> None:
        if moment <= self.today:
            heapq.heappush(self.heap, _Moment(moment, next(self.seq), kind, run))

    def play(self, journeys: list[Journey], *, start: datetime, progress: Callable[[int, int], None] | None = None):
        """Play every journey from `start` to today. `progress(day, days)` is called as each new day of the history
        begins (bin/run shows it, so a long seed is not a silent one)."""
        prices = {key: self.world.product(name=n, amount=a, interval=i) for key, (n, a, i) in PLANS.items()}
        offers_install(prices)  # the cancel page's save offers (devtools/demo/cancel_page.py)
        for journey in journeys:
            play = Play(world=self.world, prices=prices, objects={"journey": journey})
            for moment, step in journey.steps:
                self.at(moment, self._step_runner(journey, play, step, moment), kind="stripe")
        plan_tickets(self, journeys)  # Discord support tickets (devtools/demo/tickets.py)
        self.next_daily = start.replace(hour=6, minute=15, second=0, microsecond=0) + timedelta(days=1)
        self.sent_since = start
        # DEBUG off while playing: with it on (bin/run sets it), Django keeps every one of the seed's ~100,000
        # queries in connection.queries, which cost about 7% of the seed's time and nobody reads.
        settings = {**_stripe_key_settings(), "DEBUG": False}
        days = max(1, (self.today.date() - start.date()).days)
        shown_day = -1
        with installed(self.stripe), tasks_inline(), quiet_logs(), override_settings(**settings):
            self.endpoint = _demo_endpoint()
            while True:
                moment, kind, run = self._next()
                if moment is None:
                    break
                day = min(days, (moment.date() - start.date()).days)
                if progress is not None and day > shown_day:
                    shown_day = day
                    progress(day, days)
                began = time.monotonic()
                with clock.as_of(moment):
                    run()
                    if kind != "tracking":  # only these can send or queue emails
                        self._track_new_sends(moment)
                        self.next_due = None
                self.seconds[kind] = self.seconds.get(kind, 0.0) + time.monotonic() - began

    def _next(self) -> tuple[datetime | None, str, Callable[[], None] | None]:
        """The earliest of: the next journey step or tracking event, the next email due, the next daily job."""
        candidates: list[tuple[datetime, int, str, Callable[[], None]]] = []
        if self.heap:
            top = self.heap[0]
            candidates.append((top.at, 0, top.kind, lambda: heapq.heappop(self.heap).run()))
        if self.next_due is None:
            pending = EmailQueueItem.objects.filter(status=QueueStatus.PENDING)
            self.next_due = pending.aggregate(at=Min("next_attempt_at"))["at"] or self.today + timedelta(days=1)
        due = self.next_due
        if due <= self.today:
            candidates.append((due, 1, "email queue", self._email_queue_run))
        if self.next_daily is not None and self.next_daily <= self.today:
            candidates.append((self.next_daily, 2, "daily jobs", self._daily))
        if not candidates:
            return None, "", None
        moment, _, kind, run = min(candidates, key=lambda c: (c[0], c[1]))
        return moment, kind, run

    # what happens at a moment ---------------------------------------------------------------------------------
    def _step_runner(self, journey: Journey, play: Play, step, moment: datetime) -> Callable[[], None]:
        def run() -> None:
            play.objects["at"] = moment
            if "customer_id" not in play.objects:
                customer, _ = services.customer_upsert(
                    email=journey.email, name=journey.name, metadata={"demo": True}, **journey.fields
                )
                play.objects["customer_id"] = customer.pk
            for event in step(play):
                self._deliver(event)

        return run

    def _deliver(self, event: dict) -> None:
        """The webhook view's work below the signature check: store the delivery, then its processing runs."""
        import json

        self.stripe_events += 1
        stripe_webhook_store.stripe_event_receive(
            body=json.dumps(event),
            event=event,
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0 (demo)"},
            remote_ip="127.0.0.1",
            endpoint=self.endpoint,
        )

    def _email_queue_run(self) -> None:
        from automations.drain import email_queue_process

        email_queue_process(time_budget=30, sleep=lambda seconds: None)

    def _daily(self) -> None:
        onboarding_settle_task()
        self.next_daily += timedelta(days=1)

    # Resend's tracking --------------------------------------------------------------------------------------------
    def _track_new_sends(self, moment: datetime) -> None:
        rows = EmailQueueItem.objects.filter(status=QueueStatus.SENT, sent_at__gte=self.sent_since).values_list(
            "pk", "provider_message_id", "recipient", "sent_at"
        )
        for pk, message_id, recipient, sent_at in rows:
            if pk in self.sent_seen:
                continue
            self.sent_seen.add(pk)
            self._plan_tracking(message_id=message_id, recipient=recipient, sent_at=sent_at)
        self.sent_since = moment

    def _plan_tracking(self, *, message_id: str, recipient: str, sent_at: datetime) -> None:
        rng = self.rng
        if rng.random() < 0.02:
            bounced = self._tracking("email.bounced", message_id, recipient, sent_at)
            self.at(sent_at + timedelta(seconds=4), bounced, kind="tracking")
            return
        delivered = self._tracking("email.delivered", message_id, recipient, sent_at)
        self.at(sent_at + timedelta(seconds=3), delivered, kind="tracking")
        if rng.random() < 0.55:
            opened = sent_at + timedelta(minutes=rng.uniform(10, 30 * 60))
            self.at(opened, self._tracking("email.opened", message_id, recipient, sent_at), kind="tracking")
            if rng.random() < 0.35:
                clicked = opened + timedelta(minutes=rng.uniform(1, 90))
                self.at(clicked, self._tracking("email.clicked", message_id, recipient, sent_at), kind="tracking")

    def _tracking(self, kind: str, message_id: str, recipient: str, sent_at: datetime) -> Callable[[], None]:
        def run() -> None:
            from anymail.webhooks.resend import ResendTrackingWebhookView

            self.tracking_events += 1
            now = clock.now()
            payload = _resend_event(kind, message_id=message_id, recipient=recipient, sent_at=sent_at, at=now)
            svix_id = f"msg_demo{self.tracking_events:07d}"
            request = SimpleNamespace(headers={"svix-id": svix_id})
            # anymail's parsing of the payload, as the view does after checking the Svix signature.
            event = ResendTrackingWebhookView.esp_to_anymail_event(ResendTrackingWebhookView, payload, request)
            tracking.send(sender=ResendTrackingWebhookView, event=event, esp_name="Resend")

        return run


def _resend_event(kind: str, *, message_id: str, recipient: str, sent_at: datetime, at: datetime) -> dict:
    """A Resend webhook payload (https://resend.com/docs/dashboard/webhooks/event-types)."""
    data = {
        "email_id": message_id,
        "from": "ModReady <hello@modready.example>",
        "to": [recipient],
        "subject": "",
        "created_at": sent_at.isoformat().replace("+00:00", "Z"),
    }
    if kind == "email.clicked":
        data["click"] = {
            "ipAddress": "203.0.113.7",
            "link": "https://modready.example/dashboard",
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        }
    if kind == "email.bounced":
        data["bounce"] = {
            "message": "The recipient's email provider sent a hard bounce message, and the address does not exist.",
            "subType": "General",
            "type": "Permanent",
        }
    return {"type": kind, "created_at": at.isoformat().replace("+00:00", "Z"), "data": data}


def _stripe_key_settings() -> dict:
    """stripe-python refuses to call without a key; the stand-in ignores it, and a real key never leaves here."""
    from django.conf import settings

    return {} if settings.STRIPE_TEST_SECRET_KEY else {"STRIPE_TEST_SECRET_KEY": "sk_test_" + "0" * 24 + "modreadydemo"}


def _demo_endpoint():
    """The configured Stripe webhook endpoint (it holds the signing secret), or one for the local run."""
    import secrets

    endpoint = stripe_webhook_endpoint.webhook_endpoint_get()
    if endpoint is None:
        endpoint, _ = stripe_webhook_endpoint.webhook_endpoint_configure(
            secret=f"whsec_{secrets.token_urlsafe(24)}", url=DEMO_WEBHOOK_URL
        )
    return endpoint
