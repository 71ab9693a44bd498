"""Roles: Support and Marketing see exactly the pages their work needs; dj-stripe's tables are the superusers'."""

import pytest
from django.urls import reverse

from tests.automations.factories import QueuedEmailFactory
from tests.customers.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

SUPPORT_PAGES = {
    "automations.emailevent",
    "automations.emailqueueitem",
    "automations.suppression",
    "billing.cancelsession",
    "billing.cardexpirynotice",
    "billing.goodwillcredit",
    "billing.paymentfailure",
    "billing.subscription",
    "billing.subscriptionchange",
    "customers.customer",
    "customers.stagetransition",
    "customers.timelineevent",
    "integrations.inboundwebhook",
    "integrations.workflowrun",
    "integrations.workflowstep",
    "support.categorystaffrole",
    "support.discordinteraction",
    "support.panelsuggestion",
    "support.savedreply",
    "support.savedreplyuse",
    "support.slaalert",
    "support.slatarget",
    "support.ticket",
    "support.ticketmessage",
    "support.ticketresponse",
}
MARKETING_PAGES = {
    "automations.automationrule",
    "automations.automationstep",
    "automations.emailevent",
    "automations.emailqueueitem",
    "automations.emailtemplate",
    "automations.enrollment",
    "automations.sendingpause",
    "automations.suppression",
    "billing.cancelsession",
    "billing.saveoffer",
    "customers.consentrecord",
    "customers.customer",
    "customers.stagetransition",
    "customers.timelineevent",
    "customers.topic",
    "customers.topicsubscription",
    "integrations.workflowrun",
    "integrations.workflowstep",
    "marketing.broadcast",
    "marketing.segment",
    "support.panelsuggestion",
    "support.savedreply",
}


def _pages(response) -> set[str]:
    return {
        f"{app['app_label']}.{model['object_name'].lower()}"
        for app in response.context["app_list"]
        for model in app["models"]
    }


def _registered(label: str) -> bool:
    from django.apps import apps
    from django.contrib import admin

    return apps.get_model(label) in admin.site._registry


@pytest.mark.parametrize("role, expected", [("support_user", SUPPORT_PAGES), ("marketing_user", MARKETING_PAGES)])
def test_each_role_sees_exactly_its_pages(client, request, role, expected):
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse("admin:index"))
    assert _pages(response) == {label for label in expected if _registered(label)}
    assert not any(app["app_label"] == "djstripe" for app in response.context["app_list"])


def test_superusers_see_djstripe_in_its_own_group_at_the_bottom(admin_client):
    apps = admin_client.get(reverse("admin:index")).context["app_list"]
    assert apps[-1]["app_label"] == "djstripe"
    assert apps[-1]["name"] == "Stripe internals (dj-stripe)"
    assert len(apps[-1]["models"]) > 30
    assert all(app["app_label"] != "djstripe" for app in apps[:-1])


def test_staff_with_djstripe_permissions_still_do_not_see_it(client):
    from django.contrib.auth.models import Permission

    user = StaffUserFactory()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="djstripe", codename__startswith="view")
    )
    client.force_login(user)
    apps = client.get(reverse("admin:index")).context["app_list"]
    assert all(app["app_label"] != "djstripe" for app in apps)


def test_marketing_may_retry_and_cancel_emails_support_only_reads_them(client, support_user, marketing_user):
    item = QueuedEmailFactory()
    url = reverse("admin:automations_emailqueueitem_changelist")
    client.force_login(marketing_user)
    assert "cancel_pending" in client.get(url).content.decode()
    client.post(url, {"action": "cancel_pending", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert item.status == "cancelled"
    client.force_login(support_user)
    page = client.get(url)
    assert page.status_code == 200 and "cancel_pending" not in page.content.decode()


def test_a_refused_admin_page_keeps_the_admins_navigation(client, support_user):
    client.force_login(support_user)
    response = client.get(reverse("admin:automations_automationrule_changelist"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "You do not have access to this page" in page
    assert 'id="nav-sidebar"' in page
    assert reverse("admin:support_ticket_changelist") in page  # the pages Support can open are offered


def test_a_403_outside_the_admin_stays_plain(client):
    from django.test import RequestFactory

    from config.admin_site import permission_denied

    response = permission_denied(RequestFactory().get("/api/v1/whatever"), None)
    assert response.status_code == 403
    assert b"nav-sidebar" not in response.content
