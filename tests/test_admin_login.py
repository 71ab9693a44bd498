"""The admin login under attack: lockout per account and per address (django-axes), TOTP two-factor (django-otp)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.db.models import F
from django.test import RequestFactory
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.client_address import client_address
from tests.customers.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # StaffUserFactory's


def log_in(client, username, password, token="", address="203.0.113.5", **headers):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "otp_token": token, "next": reverse("admin:index")},
        REMOTE_ADDR=address,
        **headers,
    )


def logged_in(client) -> bool:
    return SESSION_KEY in client.session


def current_code(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


@pytest.fixture
def staff(db):
    return StaffUserFactory(username="maria")


def test_forty_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(client, staff):
    answers = [log_in(client, "maria", f"guess-{n}").status_code for n in range(40)]

    assert answers[:4] == [200] * 4  # the login form again, with its error
    assert set(answers[5:]) == {429}  # locked out from the fifth failure on
    response = log_in(client, "maria", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert not logged_in(client)


def test_the_account_stays_locked_from_another_address(client, staff):
    for n in range(5):
        log_in(client, "maria", f"guess-{n}", address="203.0.113.5")

    assert log_in(client, "maria", PASSWORD, address="198.51.100.7").status_code == 429
    assert not logged_in(client)


def test_one_address_spraying_many_accounts_locks_those_accounts_not_everyone_at_that_address(client, staff):
    # Changed (issue 17): an address alone no longer locks anyone out. Behind a proxy every visitor may share one
    # address; each sprayed username is locked (per username), the other accounts at that address are not.
    for n in range(5):
        for _ in range(5):
            log_in(client, f"someone-{n}", "password1", address="203.0.113.5")

    assert log_in(client, "someone-0", "password1", address="198.51.100.7").status_code == 429
    assert log_in(client, "maria", PASSWORD, address="203.0.113.5").status_code == 302
    assert logged_in(client)


def test_behind_an_unconfigured_proxy_one_persons_guesses_do_not_lock_out_every_staff_member(client, staff, settings):
    settings.TRUSTED_PROXY_COUNT = 0  # the default, with a proxy in front: every request comes from the proxy
    proxy = "10.0.0.2"
    StaffUserFactory(username="sam")
    for n in range(10):
        log_in(client, "mallory", f"guess-{n}", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.66")
        log_in(client, "sam", f"guess-{n}", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.66")

    assert log_in(client, "sam", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    response = log_in(client, "maria", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert response.status_code == 302
    assert logged_in(client)
    # Logged in, staff are told the proxy is not configured.
    page = client.get(reverse("admin:index"), REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert "TRUSTED_PROXY_COUNT is 0" in page.content.decode()


def test_the_admin_says_nothing_about_proxies_when_none_is_in_front_or_it_is_configured(client, staff, settings):
    client.force_login(staff)
    assert "TRUSTED_PROXY_COUNT" not in client.get(reverse("admin:index")).content.decode()
    settings.TRUSTED_PROXY_COUNT = 1
    page = client.get(reverse("admin:index"), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert "TRUSTED_PROXY_COUNT" not in page.content.decode()


def test_lockout_expires_after_the_cool_off(client, staff, settings):
    for n in range(6):
        log_in(client, "maria", f"guess-{n}")
    assert log_in(client, "maria", PASSWORD).status_code == 429

    # The cool-off passes with no further attempt.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))

    assert log_in(client, "maria", PASSWORD).status_code == 302
    assert logged_in(client)


def test_behind_the_proxy_the_forwarded_client_is_locked_out_not_the_proxy(client, staff, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    # Changed (issue 17): the lockout is per username and per (username, address); other users' failures through the
    # same proxy never lock maria out, and her own failures lock her username wherever she comes from.
    for n in range(5):
        log_in(client, f"someone-{n}", "password1", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert log_in(client, "maria", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 302
    client.logout()

    for n in range(5):
        log_in(client, "maria", f"guess-{n}", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert log_in(client, "maria", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # A spoofed leftmost entry does not change who the proxy says the client is.
    spoofed = log_in(client, "maria", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5")
    assert spoofed.status_code == 429
    assert AccessAttempt.objects.filter(username="maria", ip_address="203.0.113.5").exists()
    assert not AccessAttempt.objects.filter(ip_address=proxy).exists()


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.1", "10.0.0.2"),  # no trusted proxy: the header is the client's own words
        (1, "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        (2, "198.51.100.1, 203.0.113.5, 10.0.0.1", "203.0.113.5"),
        (2, "203.0.113.5", "10.0.0.2"),  # shorter than the proxy chain: misconfigured, use the peer
        (1, "unknown", "10.0.0.2"),
        (1, "", "10.0.0.2"),
    ],
)
def test_client_address_reads_the_trusted_proxy_count(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


# --- Two-factor -------------------------------------------------------------------------------------------------


@pytest.fixture
def device(staff):
    return TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)


def test_a_user_with_a_device_cannot_log_in_without_a_valid_code(client, staff, device):
    without = log_in(client, "maria", PASSWORD)
    assert without.status_code == 200
    assert "needs its code" in without.content.decode()
    assert not logged_in(client)

    wrong = log_in(client, "maria", PASSWORD, token=f"{(int(current_code(device)) + 1) % 1_000_000:06d}")
    assert wrong.status_code == 200
    assert not logged_in(client)


def test_a_user_with_a_device_logs_in_with_the_current_code(client, staff, device):
    assert log_in(client, "maria", PASSWORD, token=current_code(device)).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_wrong_codes_count_towards_the_lockout(client, staff, device):
    for _ in range(5):
        log_in(client, "maria", PASSWORD, token="000000" if current_code(device) != "000000" else "111111")

    assert log_in(client, "maria", PASSWORD, token=current_code(device)).status_code == 429
    assert not logged_in(client)


def test_a_session_without_the_second_factor_does_not_reach_the_admin(client, staff, device):
    client.force_login(staff)  # a password-only session, e.g. from before the device was added

    response = client.get(reverse("admin:customers_customer_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_a_device_log_in_with_the_password_alone(client, staff, settings):
    settings.ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = True  # production: required for superusers only
    assert log_in(client, "maria", PASSWORD).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_in_production_a_superuser_must_enrol_before_using_the_admin(client, settings):
    settings.ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = True
    owner = StaffUserFactory(username="owner", is_superuser=True)
    client.force_login(owner)

    for page in ("admin:index", "admin:customers_customer_changelist", "admin:auth_user_changelist"):
        response = client.get(reverse(page))
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:otp_setup")

    setup = client.get(reverse("admin:otp_setup"))
    page = setup.content.decode()
    assert setup.status_code == 200
    assert "otpauth://totp/" in page
    assert "<svg" in page
    device = TOTPDevice.objects.get(user=owner, confirmed=False)

    wrong = client.post(reverse("admin:otp_setup"), {"otp_token": "12345"})
    assert wrong.status_code == 200
    assert "does not match" in wrong.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302

    too_soon = client.post(reverse("admin:otp_setup"), {"otp_token": current_code(device)})
    assert "Too many wrong codes" in too_soon.content.decode()  # django-otp's throttle after a wrong code

    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=F("throttling_failure_timestamp") - timedelta(seconds=2)
    )
    done = client.post(reverse("admin:otp_setup"), {"otp_token": current_code(device)})
    assert done.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 200


def test_without_the_production_switch_a_superuser_may_use_the_admin_without_a_device(client, settings):
    settings.ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = False
    client.force_login(StaffUserFactory(username="owner", is_superuser=True))
    assert client.get(reverse("admin:index")).status_code == 200


def test_any_staff_member_can_enrol_a_device_and_is_then_asked_for_codes(client, staff):
    client.force_login(staff)
    client.get(reverse("admin:otp_setup"))
    device = TOTPDevice.objects.get(user=staff)
    client.post(reverse("admin:otp_setup"), {"otp_token": current_code(device)})
    client.post(reverse("admin:logout"))

    assert log_in(client, "maria", PASSWORD).status_code == 200
    assert not logged_in(client)
    assert log_in(client, "maria", PASSWORD, token=current_code(device, offset=1)).status_code == 302


def test_the_setup_page_is_for_staff_only(client):
    assert client.get(reverse("admin:otp_setup")).status_code == 302
    assert not TOTPDevice.objects.exists()


def test_the_admin_never_shows_another_users_secret(client, staff, device):
    owner = StaffUserFactory(username="owner", is_superuser=True)
    client.force_login(owner)

    page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk])).content.decode()
    assert device.key not in page
    assert "otpauth://" not in page
    assert client.get(reverse("admin:otp_totp_totpdevice_qrcode", args=[device.pk])).status_code == 403
