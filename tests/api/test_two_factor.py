"""The API honours the admin's second factor: a staff session counts only where the admin would let it in.

Sessions are made the way an attacker or a staff member makes them: by logging in to the admin with the password
(and the code, where there is a device), then calling the API with the same cookie.
"""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from tests.api.factories import TOTPDeviceFactory
from tests.automations.factories import AutomationRuleFactory
from tests.customers.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # StaffUserFactory's


def code(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


def admin_login(username: str, token: str = "") -> APIClient:
    client = APIClient(enforce_csrf_checks=False)
    response = client.post(
        reverse("admin:login"),
        {"username": username, "password": PASSWORD, "otp_token": token, "next": reverse("admin:index")},
    )
    assert response.status_code == 302, response.content
    assert SESSION_KEY in client.session
    return client


def test_a_superuser_sent_to_two_factor_setup_cannot_use_the_api(settings, customer):
    settings.ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = True  # production
    StaffUserFactory(username="owner", is_superuser=True)
    rule = AutomationRuleFactory(enabled=True)
    client = admin_login("owner")
    assert client.get(reverse("admin:index"))["Location"] == reverse("admin:otp_setup")

    listed = client.get("/api/v1/customers/")
    disabled = client.post(f"/api/v1/automation-rules/{rule.pk}/disable/")

    assert listed.status_code == 401
    assert listed.json()["errors"][0]["code"] == "authentication_failed"
    assert "two-factor" in listed.json()["errors"][0]["detail"]
    assert disabled.status_code == 401
    rule.refresh_from_db()
    assert rule.enabled
    assert client.get("/api/schema/").status_code in (401, 403)


def test_a_password_only_session_of_a_user_with_a_device_is_refused_and_a_verified_one_works(customer):
    staff = StaffUserFactory(username="maria", is_superuser=True)
    password_only = admin_login("maria")  # before the device existed
    assert password_only.get("/api/v1/customers/").status_code == 200
    device = TOTPDeviceFactory(user=staff, name="phone", confirmed=True)

    assert password_only.get("/api/v1/customers/").status_code == 401

    verified = admin_login("maria", token=code(device))
    assert verified.get("/api/v1/customers/").status_code == 200


def test_enrolling_a_device_ends_the_users_other_sessions(customer):
    StaffUserFactory(username="maria", is_superuser=True)
    elsewhere = admin_login("maria")  # e.g. a cookie copied from another browser
    here = admin_login("maria")
    here.get(reverse("admin:otp_setup"))
    device = TOTPDevice.objects.get(user__username="maria", confirmed=False)

    done = here.post(reverse("admin:otp_setup"), {"otp_token": code(device)})

    assert done.status_code == 302
    assert here.get("/api/v1/customers/").status_code == 200
    assert here.get(reverse("admin:customers_customer_changelist")).status_code == 200
    assert elsewhere.get("/api/v1/customers/").status_code == 401
    assert elsewhere.get(reverse("admin:customers_customer_changelist"))["Location"].startswith(reverse("admin:login"))
    assert SESSION_KEY not in elsewhere.session


def test_a_staff_member_without_a_device_keeps_using_the_api_where_the_admin_asks_for_no_code(settings, customer):
    settings.ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = True
    StaffUserFactory(username="sam").groups.add(Group.objects.get(name="Support"))
    assert admin_login("sam").get("/api/v1/customers/").status_code == 200
