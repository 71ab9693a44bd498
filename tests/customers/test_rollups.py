"""The dashboard's daily roll-up of stage moves: kept by customer_move_stage as customers move, equal to what the
rebuild computes from the moves, and read by the dashboard's funnel and churn figures."""

import io
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from customers.models import StageMoveDay
from customers.services import customer_move_stage, customer_upsert
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _rows() -> list[tuple]:
    return sorted(StageMoveDay.objects.values_list("day", "from_stage", "to_stage", "moves", "moved_on"))


walkers = itertools.count()


def _journeys(start: datetime) -> None:
    """A mix of paths over a week, each move made through the service at its own moment."""

    def walk(*steps):
        customer, _ = customer_upsert(email=f"walker{next(walkers)}@example.com")  # arrives in Discovery
        for days, stage in steps:
            customer_move_stage(customer=customer, to_stage=stage, cause="test", occurred_at=start + days)

    day = timedelta(days=1)
    walk((0 * day, "trial"), (2 * day, "purchase"), (2 * day + timedelta(hours=1), "active"))
    walk((0 * day, "trial"), (1 * day, "churned"), (3 * day, "win_back"), (5 * day, "churned"))
    walk((1 * day, "purchase"), (1 * day, "onboarding"), (4 * day, "at_risk"), (5 * day, "active"))
    walk((2 * day, "trial"), (6 * day, "purchase"))
    walk((3 * day, "purchase"), (3 * day, "churned"), (4 * day, "trial"), (4 * day, "purchase"))


def test_the_roll_up_kept_move_by_move_equals_the_one_rebuilt_from_the_moves():
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    _journeys(start)
    kept = _rows()
    assert kept, "the moves were rolled up"
    # A trial entered on day 0 and bought on day 2 is a moved-on trial of day 0.
    trials_day_0 = StageMoveDay.objects.get(day=start.date(), from_stage="discovery", to_stage="trial")
    assert (trials_day_0.moves, trials_day_0.moved_on) == (2, 1)

    # Five customers arrived today, and each first moved to a trial or a purchase: all five left Discovery onward.
    arrived = StageMoveDay.objects.get(from_stage="", to_stage="discovery")
    assert (arrived.day, arrived.moves, arrived.moved_on) == (timezone.now().astimezone(UTC).date(), 5, 5)

    StageMoveDay.objects.all().delete()
    call_command("rebuild_stage_rollup", stdout=io.StringIO())
    assert _rows() == kept


def test_the_dashboard_counts_a_churn_once_when_a_win_back_ends(admin_client):
    now = timezone.now()
    customer = CustomerFactory(lifecycle_stage="active")
    customer_move_stage(customer=customer, to_stage="churned", cause="ended", occurred_at=now - timedelta(days=3))
    customer_move_stage(customer=customer, to_stage="win_back", cause="campaign", occurred_at=now - timedelta(days=2))
    customer_move_stage(customer=customer, to_stage="churned", cause="no return", occurred_at=now - timedelta(days=1))

    board = admin_client.get(reverse("admin:index"), {"days": 7}).context["dashboard"]["customers"]
    assert board["churned"] == 1
    funnel = {row["stage"]: row["entered"] for row in board["funnel"]}
    assert funnel["Churned"] == 2  # both moves into Churned, as the moves behind the link show
