"""seed_demo: 90 days of history played through the real services, that every page can show truthfully."""

import os
import subprocess
import sys
from datetime import timedelta
from importlib import import_module
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import F, Q
from django.utils import timezone

from automations.models import EmailEvent, EmailQueueItem, Enrollment, QueueStatus
from automations.selectors import email_analytics
from billing.models import StripeEventProcessing, Subscription
from customers.lifecycle import Stage
from customers.models import Customer, DomainEvent, StageTransition, TimelineEvent

# Committed for real: the seed runs each service in its own transaction and its tasks after each commit.
pytestmark = pytest.mark.django_db(transaction=True)

# Enough customers for one of each journey (the cast plays each once before the weighted mix).
CUSTOMERS = 30


def snapshot() -> dict[str, int]:
    models = [
        Customer,
        TimelineEvent,
        StageTransition,
        DomainEvent,
        Subscription,
        StripeEventProcessing,
        Enrollment,
        EmailQueueItem,
        EmailEvent,
        get_user_model(),
    ]
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture
def default_flows(transactional_db):
    """The default rules and templates of the data migrations: a transactional test elsewhere may have flushed them
    (as in tests/automations/conftest.py)."""
    from django.apps import apps

    import_module("automations.migrations.0002_default_flows").create_defaults(apps, None)
    import_module("automations.migrations.0007_dunning_timed_to_stripe").time_dunning_to_stripe(apps, None)
    import_module("automations.migrations.0012_win_back_campaigns").mark_win_back_rules(apps, None)


def test_seed_demo_plays_a_history_every_page_can_show_truthfully(settings, tmp_path, default_flows):
    """One run (the seed is the slow part), checked from several sides, then a second run."""
    settings.VAR_DIR = tmp_path
    # As config.settings.local without a Discord bot token, with bin/run's Discord stand-in not running.
    settings.DISCORD_STANDIN, settings.DISCORD_API_URL = True, "http://127.0.0.1:9/api/v10"
    # 30 customers fail few invoices: half in the dunning holdout (bin/run's 300 play at 25%) so both groups show.
    settings.DUNNING_HOLDOUT_PERCENT = 50
    first, second = StringIO(), StringIO()

    call_command("seed_demo", customers=CUSTOMERS, stdout=first)
    progress = [line for line in first.getvalue().splitlines() if line.startswith("Demo history: day ")]
    assert len(progress) >= 10 and progress[-1].startswith("Demo history: day 90 of 90"), "the seed shows its progress"
    before = snapshot()
    call_command("seed_demo", customers=CUSTOMERS, stdout=second)

    every_stage_of_the_journey_has_customers()
    the_win_back_campaign_moved_customers_as_the_lifecycle_says()
    the_history_spans_ninety_days_and_went_through_the_webhook_path()
    no_email_went_out_before_the_event_that_caused_it()
    every_stage_move_has_its_timeline_entry()
    analytics_and_the_onboarding_rule_have_something_to_show()
    support_tickets_agree_with_their_customers_and_channels()
    failed_payments_and_expiring_cards_have_something_to_show()
    # A second run changes nothing and prints the same login.
    assert snapshot() == before
    assert "already present" in second.getvalue()
    login = next(line for line in first.getvalue().splitlines() if line.startswith("Admin login:"))
    assert login in second.getvalue()
    username, password = login.removeprefix("Admin login: ").split(" / ")
    assert get_user_model().objects.get(username=username).check_password(password)


def every_stage_of_the_journey_has_customers():
    stages = set(Customer.objects.values_list("lifecycle_stage", flat=True))
    expected = set(Stage.values) - {Stage.PURCHASE}  # purchase is passed through at once
    assert expected <= stages, f"missing: {expected - stages}"
    assert Customer.objects.count() == CUSTOMERS
    # Fewer than two in three have only signed up: the rest have a story in Stripe.
    assert Customer.objects.filter(lifecycle_stage=Stage.DISCOVERY).count() < CUSTOMERS * 2 // 3


def the_win_back_campaign_moved_customers_as_the_lifecycle_says():
    """customers/lifecycle.py: reached by the campaign's first sent email; back to Churned when it ended without a
    return; on to a subscription when they came back during it."""
    moves = StageTransition.objects.filter(Q(to_stage=Stage.WIN_BACK) | Q(from_stage=Stage.WIN_BACK))
    assert {(m.from_stage, m.to_stage) for m in moves} >= {
        (Stage.CHURNED, Stage.WIN_BACK),
        (Stage.WIN_BACK, Stage.CHURNED),
        (Stage.WIN_BACK, Stage.PURCHASE),
    }
    for move in moves.filter(to_stage=Stage.WIN_BACK):
        first = EmailQueueItem.objects.filter(customer=move.customer, enrollment__rule__moves_to_stage="win_back")
        assert first.filter(sent_at=move.occurred_at).exists(), move.cause
    for move in moves.filter(to_stage=Stage.CHURNED):
        assert "ended without a return" in move.cause
    for customer in Customer.objects.filter(lifecycle_stage=Stage.WIN_BACK):
        assert customer.enrollments.filter(rule__moves_to_stage="win_back", status="active").exists()


def the_history_spans_ninety_days_and_went_through_the_webhook_path():
    now = timezone.now()
    first = Customer.objects.order_by("created_at").first().created_at
    assert now - timedelta(days=91) <= first <= now - timedelta(days=60)
    assert not StripeEventProcessing.objects.exclude(status="processed").exists()
    assert StripeEventProcessing.objects.count() >= 30
    assert not DomainEvent.objects.filter(dispatched_at__isnull=True, next_attempt_at__lte=now).exists()
    statuses = set(Subscription.objects.values_list("status", flat=True))
    assert {"active", "trialing", "past_due", "canceled"} <= statuses
    canceled = Subscription.objects.filter(status="canceled")
    assert canceled.exclude(cancellation_feedback="").exists()


def no_email_went_out_before_the_event_that_caused_it():
    sent = EmailQueueItem.objects.filter(status=QueueStatus.SENT).select_related("enrollment__trigger_event")
    assert sent.count() >= 10
    for item in sent:
        trigger = item.enrollment.trigger_event
        assert trigger is not None
        assert item.sent_at >= trigger.occurred_at >= item.customer.created_at, item
        assert item.sent_at >= item.enrollment.enrolled_at >= trigger.occurred_at
    # Tracking events come after the email they are about.
    assert not EmailEvent.objects.filter(occurred_at__lt=F("queue_item__sent_at")).exists()
    assert EmailQueueItem.objects.filter(status=QueueStatus.PENDING, next_attempt_at__gt=timezone.now()).exists()


def every_stage_move_has_its_timeline_entry():
    transitions = StageTransition.objects.all()
    assert transitions.count() >= CUSTOMERS // 2
    for move in transitions:
        assert TimelineEvent.objects.filter(customer_id=move.customer_id, occurred_at=move.occurred_at).exists(), (
            f"{move.customer_id}: {move.from_stage} -> {move.to_stage} ({move.cause}) has no timeline entry"
        )
    for customer in Customer.objects.exclude(lifecycle_stage=Stage.DISCOVERY):
        last = customer.stage_transitions.order_by("-occurred_at", "-id").first()
        assert last.to_stage == customer.lifecycle_stage


def analytics_and_the_onboarding_rule_have_something_to_show():
    now = timezone.now()
    analytics = email_analytics(since=now - timedelta(days=90), until=now)
    assert analytics.total.sent > 0 and analytics.total.opened > 0 and analytics.total.clicked > 0
    assert {row.rule_name for row in analytics.rules} >= {"Welcome", "Dunning", "Win-back"}
    assert StageTransition.objects.filter(from_stage="onboarding", to_stage="active").exists()
    assert StageTransition.objects.filter(from_stage="at_risk", to_stage="active", cause="payment.recovered").exists()


def support_tickets_agree_with_their_customers_and_channels():
    from django.conf import settings

    from backoffice.customer_360 import customer_360
    from devtools.fakes.discord.standin import DiscordStandIn
    from support.models import Ticket, TicketStatus
    from support.selectors import tickets_open_summary

    tickets = list(Ticket.objects.select_related("customer").prefetch_related("messages"))
    statuses = [t.status for t in tickets]
    assert statuses.count(TicketStatus.OPEN) >= 1 and statuses.count(TicketStatus.CLOSED) >= 2, statuses
    assert set(statuses) == {TicketStatus.OPEN, TicketStatus.CLOSED}
    assert any(t.closed_by_name == "auto-close" for t in tickets)
    for ticket in tickets:
        customer = ticket.customer
        assert customer is not None and customer.discord_user_id == ticket.discord_user_id, ticket
        assert ticket.opened_at > customer.created_at and not ticket.last_error, ticket
        opened = TimelineEvent.objects.get(customer=customer, kind="support.ticket_opened")
        assert opened.occurred_at == ticket.opened_at
        if ticket.status == TicketStatus.CLOSED:
            # The transcript was saved from the channel, and what was said there falls between opening and close.
            sent = [m.sent_at for m in ticket.messages.all()]
            assert ticket.transcript_html and len(sent) >= 2, ticket
            assert ticket.opened_at <= min(sent) and max(sent) <= ticket.closed_at, ticket
            closed = TimelineEvent.objects.get(customer=customer, kind="support.ticket_closed")
            assert closed.occurred_at == ticket.closed_at
        else:
            assert customer_360(customer=customer).open_tickets == 1
    assert tickets_open_summary()["count"] == statuses.count(TicketStatus.OPEN)
    # The open tickets' channels wait in var/ for bin/run's stand-in, so staff can close them from the admin.
    with DiscordStandIn(port=0, state_path=settings.VAR_DIR / "discord-standin.json") as standin:
        kept = set(standin.channels)
    assert all((t.discord_channel_id in kept) == (t.status == TicketStatus.OPEN) for t in tickets)


def test_demo_data_is_refused_where_the_settings_do_not_allow_it(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.SEED_DEMO_ALLOWED = False

    with pytest.raises(CommandError, match="refuses to run"):
        call_command("seed_demo")
    assert not Customer.objects.exists()
    assert not get_user_model().objects.exists()
    assert not (tmp_path / "admin-password").exists()


def test_demo_data_is_refused_under_the_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "MODREADY_VAR_DIR"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="x" * 60,
        ALLOWED_HOSTS="crm.modready.example",
        EMAIL_DELIVERY="disabled",  # production refuses to start without Resend settings otherwise
        # Never reached: the command stops before touching a database.
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/modready_does_not_exist",
        MODREADY_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    # devtools, which holds seed_demo, is not installed in production: the command does not exist there at all.
    assert "Unknown command: 'seed_demo'" in result.stderr
    assert not (tmp_path / "admin-password").exists()


def failed_payments_and_expiring_cards_have_something_to_show():
    """The dashboard's declines, holdout comparison and card-expiry warnings, from the history itself."""
    from billing.models import CardExpiryNotice, PaymentFailure

    kinds = set(PaymentFailure.objects.values_list("decline_kind", flat=True))
    assert {"soft", "hard", "authentication_required"} <= kinds
    groups = set(PaymentFailure.objects.values_list("dunning_group", flat=True))
    assert {"emails", "holdout"} <= groups
    assert PaymentFailure.objects.filter(recovered_at__isnull=False).exists()
    assert CardExpiryNotice.objects.exists()
    assert TimelineEvent.objects.filter(kind="card.expiring").count() == CardExpiryNotice.objects.count()
