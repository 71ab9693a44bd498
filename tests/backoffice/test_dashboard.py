"""The admin's front page: figures against a known history, per period; the same number of queries at any size."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from customers.models import Customer
from tests.backoffice.story import STORY_FIGURES, build_story

pytestmark = pytest.mark.django_db


@pytest.fixture
def story():
    return build_story(now=timezone.now())


@pytest.mark.parametrize("days", [7, 30, 90])
def test_dashboard_figures_for_each_period(admin_client, story, days):
    expected = STORY_FIGURES[days]
    response = admin_client.get(reverse("admin:index"), {"days": days})
    board = response.context["dashboard"]
    assert board["days"] == days
    assert board["customers"]["new"] == expected["new"]
    assert board["customers"]["churned"] == expected["churned"]
    assert board["churn"]["ended"] == expected["ended"]
    assert board["recovered"]["recovered"] == expected["recovered"]
    assert board["recovered"]["after_dunning"] == expected["after_dunning"]
    engagement = board["engagement"]
    assert (engagement["sent"]["count"], engagement["opened"]["count"], engagement["clicked"]["count"]) == (
        expected["sent"],
        expected["opened"],
        expected["clicked"],
    )
    page = response.content.decode()
    assert f'<a href="?days={days}" class="selected"' in page
    assert "Opened (may include privacy proxies)" in page and "the reliable figure" in page


def test_revenue_recovered_counts_only_invoices_paid_after_a_dunning_email(admin_client, story):
    week = admin_client.get(reverse("admin:index"), {"days": 7}).context["dashboard"]["recovered"]
    # eve's EUR invoice had a dunning email before it was paid; fay's USD one only got it afterwards.
    assert [str(money) for money in week["amounts"]] == ["14.99 EUR"]
    assert [r.invoice_id for r in week["invoices"]] == ["in_eve_a"]
    quarter = admin_client.get(reverse("admin:index"), {"days": 90}).context["dashboard"]["recovered"]
    assert [str(money) for money in quarter["amounts"]] == ["14.99 EUR", "9.99 USD"]


def test_churn_reasons_are_counted_with_the_comments_listed(admin_client, story):
    response = admin_client.get(reverse("admin:index"), {"days": 30})
    churn = response.context["dashboard"]["churn"]
    assert churn["feedback"] == [("It's too expensive", 2), ("Some features are missing", 1)]
    assert churn["reasons"] == [("Canceled by request", 3)]
    assert [s.cancellation_comment for s in churn["comments"]] == ["Too pricey for my group a", "Needs Forge 1.21 a"]
    assert "Needs Forge 1.21 a" in response.content.decode()


def test_at_risk_lists_failed_payments_with_stripes_next_retry_then_scheduled_cancellations(admin_client, story):
    at_risk = admin_client.get(reverse("admin:index")).context["dashboard"]["at_risk"]
    assert (at_risk["failing"], at_risk["scheduled"]) == (1, 1)
    failing, scheduled = at_risk["rows"]
    assert failing.customer == story["ann"] and failing.amount_due_display == "14.99 EUR"
    assert failing.next_payment_attempt is not None and failing.next_payment_attempt > timezone.now()
    assert scheduled.customer == story["eve"] and scheduled.cancel_at_period_end


def test_queue_health_and_tickets(admin_client, story):
    response = admin_client.get(reverse("admin:index"))
    board = response.context["dashboard"]
    assert (board["queue"]["due"], board["queue"]["later"], board["queue"]["failed"]) == (1, 1, 1)
    assert [pause.cause for pause in board["queue"]["pauses"]] == ["Resend refused the API key (401)"]
    assert board["tickets"]["count"] == 2
    assert [t.subject for t in board["tickets"]["oldest"]] == ["Server down a", "Mods a"]
    assert "Resend refused the API key (401)" in response.content.decode()


def test_funnel_links_to_the_customers_behind_each_count_with_conversion(admin_client, story):
    customers = admin_client.get(reverse("admin:index"), {"days": 7}).context["dashboard"]["customers"]
    funnel = {row["stage"]: row for row in customers["funnel"]}
    assert funnel["Active"]["now"] == 3 and funnel["Trial"]["entered"] == 2
    listed = admin_client.get(funnel["Active"]["now_url"])
    assert listed.context["cl"].result_count == 3
    entered = admin_client.get(funnel["Trial"]["entered_url"])
    assert sorted(c.email for c in entered.context["cl"].result_list) == ["ann-a@example.com", "ben-a@example.com"]
    assert entered.context["cl"].period_heading.startswith("Customers who entered Trial between")
    trial = next(row for row in customers["conversions"] if row["from"] == "Trial")
    assert (trial["entered"], trial["moved_on"], trial["percent"]) == (2, 1, 50)


@pytest.mark.parametrize("days", [7, 30, 90])
def test_each_customer_figure_links_to_a_list_of_exactly_the_customers_behind_it(admin_client, story, days):
    # In the story each customer enters a stage at most once, so moves and customers count alike.
    response = admin_client.get(reverse("admin:index"), {"days": days})
    customers = response.context["dashboard"]["customers"]
    figures = [(customers["new"], customers["new_url"]), (customers["churned"], customers["churned_url"])]
    figures += [(row["entered"], row["entered_url"]) for row in customers["funnel"]]
    for figure, url in figures:
        assert admin_client.get(url).context["cl"].result_count == figure, url
    page = response.content.decode()
    assert f'href="{escape(customers["churned_url"])}"' in page and f'href="{escape(customers["new_url"])}"' in page


def test_a_win_back_that_ended_is_not_a_second_churn_on_the_dashboard_or_its_list(admin_client, story):
    """Churned, reached by the win-back campaign, campaign over without a return: one churn, one customer listed."""
    from customers.services import customer_move_stage
    from tests.customers.factories import CustomerFactory

    before = admin_client.get(reverse("admin:index"), {"days": 7}).context["dashboard"]["customers"]["churned"]
    eve = CustomerFactory(email="eve-winback@example.com", lifecycle_stage="active")
    now = timezone.now()
    for to_stage, hours_ago in (("churned", 72), ("win_back", 48), ("churned", 1)):
        customer_move_stage(customer=eve, to_stage=to_stage, cause="test", occurred_at=now - timedelta(hours=hours_ago))

    customers = admin_client.get(reverse("admin:index"), {"days": 7}).context["dashboard"]["customers"]
    assert customers["churned"] == before + 1
    listed = admin_client.get(customers["churned_url"]).context["cl"]
    assert listed.result_count == before + 1
    assert eve.pk in {customer.pk for customer in listed.result_list}


def test_a_bad_period_falls_back_to_30_days(admin_client, story):
    assert admin_client.get(reverse("admin:index"), {"days": "abc"}).context["dashboard"]["days"] == 30
    assert admin_client.get(reverse("admin:index"), {"days": "365"}).context["dashboard"]["days"] == 30


def test_sections_follow_the_role(client, support_user, marketing_user, story):
    client.force_login(support_user)
    board = client.get(reverse("admin:index")).context["dashboard"]
    assert {"customers", "at_risk", "tickets", "queue"} <= board.keys()
    client.force_login(marketing_user)
    board = client.get(reverse("admin:index")).context["dashboard"]
    assert "queue" in board and "engagement" in board
    assert "at_risk" not in board and "tickets" not in board and "recovered" not in board


@pytest.mark.parametrize("role", ["support_user", "marketing_user"])
def test_every_link_on_the_home_page_opens_for_the_role_that_sees_it(client, role, request, story):
    """Support's home page linked to the analytics, which answered them 403: a role sees only what it can open."""
    import re

    client.force_login(request.getfixturevalue(role))
    page = client.get(reverse("admin:index")).content.decode()
    links = {escape_back(href) for href in re.findall(r'href="(/admin/[^"#]*)"', page)}
    links -= {reverse("admin:logout"), reverse("admin:password_change")}
    refused = [href for href in sorted(links) if client.get(href).status_code == 403]
    assert len(links) > 10 and refused == []


def escape_back(href: str) -> str:
    return href.replace("&amp;", "&")


def _queries(client, url, params=None) -> int:
    # Counted by an execute wrapper: the queries log is cleared when a request starts, which would make
    # CaptureQueriesContext count nothing after a test's own setup queries.
    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        assert client.get(url, params or {}).status_code == 200
    assert executed, "no query counted"
    return len(executed)


@pytest.mark.parametrize(
    "url",
    [
        "admin:index",
        "admin:customers_customer_changelist",
        "admin:automations_emailqueueitem_changelist",
        "admin:support_ticket_changelist",
        "admin:integrations_workflowrun_changelist",
        "admin:billing_stripeeventprocessing_changelist",
    ],
)
def test_query_count_does_not_grow_with_the_data(admin_client, url):
    now = timezone.now()
    build_story(now=now, tag="a")
    small = _queries(admin_client, reverse(url))
    for tag in ("b", "c", "d"):
        build_story(now=now, tag=tag)
    assert _queries(admin_client, reverse(url)) == small


@pytest.mark.parametrize(
    "params",
    [
        {"entered": "churned", "entered_not_from": "win_back", "entered_since": "2026-01-01", "q": "example"},
        {"created_since": "2026-01-01", "created_until": "2099-01-01", "lifecycle_stage__exact": "active"},
    ],
)
def test_customer_list_filtered_by_a_period_costs_the_same_queries_as_the_data_grows(admin_client, params):
    now = timezone.now()
    build_story(now=now, tag="a")
    url = reverse("admin:customers_customer_changelist")
    small = _queries(admin_client, url, params)
    for tag in ("b", "c", "d"):
        build_story(now=now, tag=tag)
    assert _queries(admin_client, url, params) == small


def test_onboarding_to_active_is_measured_only_over_customers_who_had_the_time(admin_client):
    """Onboarding -> Active takes up to 30 days: a 7- or 30-day period says so instead of showing 0%, and the 90-day
    period measures it over the customers who entered Onboarding at least 30 days ago."""
    from tests.backoffice.story import _customer, _move

    now = timezone.now()
    settled = _customer("conv", "settled", created_days_ago=80, now=now, stage="active")
    _move(settled, "purchase", "onboarding", days_ago=70, now=now)
    _move(settled, "onboarding", "active", days_ago=40, now=now)
    waiting = _customer("conv", "waiting", created_days_ago=60, now=now, stage="onboarding")
    _move(waiting, "purchase", "onboarding", days_ago=50, now=now)
    recent = _customer("conv", "recent", created_days_ago=10, now=now, stage="onboarding")
    _move(recent, "purchase", "onboarding", days_ago=5, now=now)

    def onboarding(days):
        board = admin_client.get(reverse("admin:index"), {"days": days})
        conversions = board.context["dashboard"]["customers"]["conversions"]
        return next(row for row in conversions if row["from"] == "Onboarding"), board.content.decode()

    for days in (7, 30):
        row, page = onboarding(days)
        assert row["percent"] is None and row["too_early"].startswith("Not measurable yet")
        assert "Not measurable yet: it takes up to 30 days" in page
    row, page = onboarding(90)
    assert (row["entered"], row["percent"]) == (3, 50)  # 3 moves in, measured over the 2 who had 30 days
    assert "of the 2 who entered by" in page


def test_the_funnel_says_how_many_of_the_moves_in_have_moved_on_since(admin_client):
    from tests.backoffice.story import _customer, _move

    now = timezone.now()
    for name, stage in (("gone", "win_back"), ("still", "churned")):
        customer = _customer("churn", name, created_days_ago=20, now=now, stage=stage)
        _move(customer, "active", "churned", days_ago=10, now=now)
    gone = Customer.objects.get(email="gone-churn@example.com")
    _move(gone, "churned", "win_back", days_ago=5, now=now)

    board = admin_client.get(reverse("admin:index"), {"days": 30})
    churned = next(row for row in board.context["dashboard"]["customers"]["funnel"] if row["stage"] == "Churned")
    assert (churned["now"], churned["entered"]) == (1, 2)
    assert "In it today" in board.content.decode() and "Moved in during the period" in board.content.decode()


def _failures(group: str, *, failed: int, recovered: int, days_ago: float, kind: str = "soft"):
    from billing.models import PaymentFailure
    from tests.customers.factories import CustomerFactory

    at = timezone.now() - timedelta(days=days_ago)
    for n in range(failed):
        PaymentFailure.objects.create(
            customer=CustomerFactory(),
            invoice_id=f"in_{group}_{kind}_{days_ago}_{n}",
            first_failed_at=at,
            last_failed_at=at,
            decline_kind=kind,
            decline_code={"soft": "insufficient_funds", "hard": "expired_card"}.get(kind, ""),
            dunning_group=group,
            recovered_at=at + timedelta(days=2) if n < recovered else None,
        )


def test_with_the_holdout_the_emails_are_compared_with_an_interval_and_the_sample_sizes(admin_client, settings):
    settings.DUNNING_HOLDOUT_PERCENT = 20
    _failures("emails", failed=70, recovered=56, days_ago=5)
    _failures("holdout", failed=80, recovered=48, days_ago=5, kind="hard")
    _failures("holdout", failed=3, recovered=3, days_ago=60)  # outside the 30 days

    response = admin_client.get(reverse("admin:index"), {"days": 30})

    holdout = response.context["dashboard"]["recovered"]["holdout"]
    assert (holdout["emails"]["failed"], holdout["emails"]["recovered"]) == (70, 56)
    assert (holdout["holdout"]["failed"], holdout["holdout"]["recovered"]) == (80, 48)
    # Newcombe (1998) Table II, example (a): 56/70 - 48/80 = 0.20, interval 0.0524 to 0.3339.
    assert (holdout["difference"], holdout["low"], holdout["high"]) == (20.0, 5.2, 33.4)
    page = response.content.decode()
    assert (
        "by <strong>20.0 points</strong> (95% confidence interval 5.2 to 33.4 points; 70 invoices with emails, 80 "
        in page
    )
    declines = {row["label"]: row["failed"] for row in response.context["dashboard"]["recovered"]["declines"]}
    assert declines == {"Soft (funds, limits)": 70, "Hard (new card needed)": 80}


def test_without_the_holdout_the_dunning_figure_says_it_does_not_measure_what_the_emails_caused(admin_client, settings):
    settings.DUNNING_HOLDOUT_PERCENT = 0
    page = admin_client.get(reverse("admin:index"), {"days": 30}).content.decode()
    assert 'id="holdout-table"' not in page
    assert "it does not measure what the emails caused" in page
    assert "set DUNNING_HOLDOUT_PERCENT" in page
