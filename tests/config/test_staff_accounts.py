"""Owners add staff from "Users → New staff member": name, email (required) and role; the new member chooses their
password from the link emailed to them and signs in with it."""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from automations.models import EmailTemplate
from tests.customers.factories import StaffUserFactory

NEW = "/admin/auth/user/new-staff-member/"


@pytest.fixture
def owner(db):
    return StaffUserFactory(is_superuser=True)


def _create(client, run_on_commit, **data):
    with run_on_commit():
        return client.post(NEW, data)


def test_owner_adds_a_support_member_who_sets_a_password_from_the_email_and_signs_in(client, owner, run_on_commit):
    client.force_login(owner)
    page = client.get(reverse("admin:auth_user_changelist"))
    assert NEW in page.content.decode(), "the user list offers the New staff member form"

    response = _create(client, run_on_commit, name="Robin Meyer", email="Robin@ModReady.example", role="Support")

    user = get_user_model().objects.get(email="robin@modready.example")
    assert response.status_code == 302
    assert (user.first_name, user.last_name, user.is_staff, user.is_superuser) == ("Robin", "Meyer", True, False)
    assert [g.name for g in user.groups.all()] == ["Support"]
    assert not user.has_usable_password()
    assert LogEntry.objects.filter(object_id=str(user.pk), user=owner).exists(), "the creation is in the admin history"

    [welcome] = mail.outbox
    assert welcome.to == ["robin@modready.example"]
    link = re.search(r"http\S+/staff/password/\S+/", welcome.body).group(0)

    client.logout()
    form_page = client.get(urlsplit(link).path, follow=True)
    assert form_page.status_code == 200
    assert "new password" in form_page.content.decode().lower()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": "a long new passphrase 7", "new_password2": "a long new passphrase 7"}
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a long new passphrase 7")

    login = client.post(
        reverse("admin:login"), {"username": "robin@modready.example", "password": "a long new passphrase 7"}
    )
    assert login.status_code == 302
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 200


def test_email_is_required_and_must_be_new(client, owner, run_on_commit):
    client.force_login(owner)
    StaffUserFactory(email="taken@modready.example")

    missing = _create(client, run_on_commit, name="No Mail", email="", role="Marketing")
    taken = _create(client, run_on_commit, name="Twice", email="TAKEN@modready.example", role="Marketing")

    assert "This field is required" in missing.content.decode()
    assert "exists already" in taken.content.decode()
    assert not get_user_model().objects.filter(first_name__in=["No", "Twice"]).exists()
    assert mail.outbox == []


def test_only_owners_create_staff_and_only_superusers_create_owners(client, support_user, run_on_commit):
    client.force_login(support_user)
    assert client.get(NEW).status_code == 403

    support_user.user_permissions.add(*_add_user_permission())
    support_user = get_user_model().objects.get(pk=support_user.pk)
    client.force_login(support_user)
    assert "Owner" not in client.get(NEW).content.decode()
    _create(client, run_on_commit, name="Sneaky", email="sneaky@modready.example", role="owner")
    assert not get_user_model().objects.filter(email="sneaky@modready.example").exists()


def _add_user_permission():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(codename__in=["add_user", "view_user"], content_type__app_label="auth")


def test_the_stock_add_user_form_asks_for_the_email(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("admin:auth_user_add"),
        {"username": "plain", "email": "", "usable_password": "true", "password1": "x long pass 99", "password2": "x"},
    )
    assert "This field is required" in response.content.decode()
    assert not get_user_model().objects.filter(username="plain").exists()


def test_a_marketer_without_an_email_is_told_why_no_test_can_be_sent(client, marketing_user):
    marketing_user.email = ""
    marketing_user.save()
    client.force_login(marketing_user)
    template = EmailTemplate.objects.order_by("pk").first()
    url = reverse("admin:automations_emailtemplate_preview", args=[template.pk])

    page = client.get(url).content.decode()
    posted = client.post(url, follow=True).content.decode()

    assert "needs an email address on your staff account" in page
    assert "has no email address" in posted
    assert mail.outbox == []
