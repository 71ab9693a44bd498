import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from customers import services
from customers.models import Customer, StaffAction
from tests.customers.factories import CustomerFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

CUSTOMER_PAGES = ["admin:customers_customer_changelist", "admin:customers_customer_funnel"]


@pytest.fixture
def busy_customer():
    customer = CustomerFactory(email="busy@example.com", lifecycle_stage="trial", stripe_customer_id="cus_busy")
    services.timeline_event_record(
        customer=customer, source="stripe", source_key="evt_a", kind="subscription.created", summary="Pro plan"
    )
    services.timeline_event_record(
        customer=customer, source="email", source_key="em_1", kind="email.opened", summary="Opened welcome"
    )
    services.customer_move_stage(customer=customer, to_stage="purchase", cause="checkout completed")
    return customer


@pytest.mark.parametrize("page", CUSTOMER_PAGES)
def test_support_staff_can_read_customer_pages(client, support_user, busy_customer, page):
    client.force_login(support_user)
    assert client.get(reverse(page)).status_code == 200


def test_change_page_shows_timeline_and_stage_history_newest_first(client, support_user, busy_customer):
    client.force_login(support_user)
    page = client.get(reverse("admin:customers_customer_change", args=[busy_customer.pk])).content.decode()

    assert "Opened welcome" in page and "Pro plan" in page
    assert page.index("Opened welcome") < page.index("Pro plan")  # recorded later, shown first
    assert "checkout completed" in page


@pytest.mark.parametrize(
    ("search", "found"),
    [("busy@", True), ("cus_busy", True), ("nobody", False)],
)
def test_customer_search_covers_email_and_external_ids(admin_client, busy_customer, search, found):
    page = admin_client.get(reverse("admin:customers_customer_changelist"), {"q": search}).content.decode()
    assert ("busy@example.com" in page) is found


def test_customer_list_filters_by_stage(admin_client, busy_customer):
    CustomerFactory(email="churned@example.com", lifecycle_stage="churned")
    page = admin_client.get(reverse("admin:customers_customer_changelist"), {"lifecycle_stage__exact": "churned"})
    assert "churned@example.com" in page.content.decode()
    assert "busy@example.com" not in page.content.decode()


def test_support_edits_contact_details_but_not_billing_state(client, support_user, busy_customer):
    client.force_login(support_user)
    url = reverse("admin:customers_customer_change", args=[busy_customer.pk])
    client.post(
        url,
        {
            "name": "Changed",
            "discord_user_id": "123456789",
            "opt_in_confirmed": "on",
            "vip_status": "on",
            "lifecycle_stage": "churned",
            "stripe_customer_id": "cus_other",
        },
    )
    busy_customer.refresh_from_db()
    assert busy_customer.name == "Changed" and busy_customer.discord_user_id == "123456789"
    assert not busy_customer.opt_in_confirmed and not busy_customer.vip_status
    assert busy_customer.lifecycle_stage == "purchase" and busy_customer.stripe_customer_id == "cus_busy"
    edit = StaffAction.objects.get(customer=busy_customer)
    assert edit.actor == support_user and edit.action == "contact_edit"
    assert set(edit.details) == {"name", "discord_user_id"}
    assert client.get(reverse("admin:customers_customer_add")).status_code == 403


def test_an_email_without_stripe_is_corrected_by_support_unless_another_customer_has_it(client, support_user):
    customer = CustomerFactory(email="typo@exmaple.com")
    CustomerFactory(email="taken@example.com")
    client.force_login(support_user)
    url = reverse("admin:customers_customer_change", args=[customer.pk])

    client.post(url, {"email": "Taken@Example.com", "name": customer.name})
    customer.refresh_from_db()
    assert customer.email == "typo@exmaple.com"

    client.post(url, {"email": "", "name": customer.name})
    customer.refresh_from_db()
    assert customer.email == "typo@exmaple.com"

    client.post(url, {"email": "fixed@example.com", "name": customer.name})
    customer.refresh_from_db()
    assert customer.email == "fixed@example.com"
    assert StaffAction.objects.get(customer=customer).details["email"]["from"] == "typo@exmaple.com"


@pytest.mark.parametrize("page", CUSTOMER_PAGES)
def test_anonymous_visitors_are_sent_to_login(client, page):
    response = client.get(reverse(page))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


@pytest.mark.parametrize("page", CUSTOMER_PAGES)
def test_staff_without_a_role_are_refused(client, page):
    client.force_login(StaffUserFactory())
    assert client.get(reverse(page)).status_code == 403


def test_non_staff_users_are_sent_to_login(client):
    user = get_user_model().objects.create_user("player", password="x")
    client.force_login(user)
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 302


def test_superuser_edits_go_through_services(admin_client):
    admin_client.post(
        reverse("admin:customers_customer_add"),
        {"email": "New@Example.com", "name": "New One", "metadata": "{}", "lifecycle_stage": "discovery"},
    )
    customer = Customer.objects.get()
    assert customer.email == "new@example.com"  # normalised by customer_upsert
    admin_client.post(
        reverse("admin:customers_customer_change", args=[customer.pk]),
        {"email": "new@example.com", "name": "Renamed", "opt_in_confirmed": "on", "metadata": "{}"},
    )
    customer.refresh_from_db()
    assert customer.name == "Renamed" and customer.opt_in_confirmed


def test_metadata_is_shown_read_only_and_a_form_save_keeps_it(admin_client):
    customer, _ = services.customer_upsert(
        email="meta@example.com", stripe_customer_id="cus_meta", metadata={"other_stripe_customer_ids": ["cus_old"]}
    )
    url = reverse("admin:customers_customer_change", args=[customer.pk])

    page = admin_client.get(url).content.decode()
    assert "cus_old" in page
    assert 'name="metadata"' not in page  # no input that a save could silently drop

    admin_client.post(url, {"name": "Renamed", "metadata": '{"hand": "edit"}'})
    customer.refresh_from_db()
    assert customer.name == "Renamed"
    assert customer.metadata == {"other_stripe_customer_ids": ["cus_old"]}


def test_marketing_reads_customers_but_support_cannot_see_automations(client, marketing_user, support_user):
    client.force_login(marketing_user)
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 200
    client.force_login(support_user)
    index = client.get(reverse("admin:index")).content.decode()
    # Support reads the emails sent (tests/config/test_roles.py), never the rules or templates.
    assert f'href="{reverse("admin:automations_automationrule_changelist")}"' not in index
    assert f'href="{reverse("admin:automations_emailtemplate_changelist")}"' not in index
