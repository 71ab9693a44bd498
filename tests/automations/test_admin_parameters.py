"""Staff pages given bad parameters answer with a message on the page, never a 500; test sends are limited."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from automations.models import AutomationRule, EmailTemplate, StaffTestSend
from automations.services.test_sends import TEST_SENDS_PER_MINUTE

pytestmark = pytest.mark.django_db


def page_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rule": "abc"}, "No rule 'abc'; showing all rules."),
        ({"rule": "99999999999999999999999"}, "No rule"),
        ({"rule": "²"}, "No rule"),
        ({"until": "9999-12-31"}, "The period cannot end in the future"),
        ({"since": "yesterday"}, "'yesterday' is not a date"),
        ({"since": "2000-01-01"}, "A period is at most 366 days"),
    ],
)
def test_analytics_explains_bad_parameters_instead_of_failing(client, marketing_user, params, message):
    client.force_login(marketing_user)
    response = client.get(reverse("admin:automations_analytics"), params)
    assert response.status_code == 200
    assert any(message in text for text in page_messages(response))
    assert message.encode() in response.content.replace(b"&#x27;", b"'")
    days = response.context["analytics"].days
    assert 1 <= len(days) <= 366
    assert response.context["until"] <= timezone.now().date()


def test_analytics_swaps_a_reversed_period_and_filters_a_known_rule(client, marketing_user):
    client.force_login(marketing_user)
    rule = AutomationRule.objects.get(name="Dunning")
    today = timezone.now().date()
    response = client.get(
        reverse("admin:automations_analytics"),
        {"since": f"{today:%Y-%m-%d}", "until": f"{today - timedelta(days=6):%Y-%m-%d}", "rule": rule.pk},
    )
    assert response.status_code == 200
    assert len(response.context["analytics"].days) == 7
    assert response.context["rule_id"] == rule.pk


@pytest.mark.parametrize("customer", ["abc", "123456789", "99999999999999999999999"])
def test_preview_with_an_unknown_customer_shows_the_sample_and_says_so(client, marketing_user, customer):
    client.force_login(marketing_user)
    template = EmailTemplate.objects.get(name="Welcome")
    response = client.get(
        reverse("admin:automations_emailtemplate_preview", args=[template.pk]), {"customer": customer}
    )
    assert response.status_code == 200
    assert b"Welcome to ModReady, Alex" in response.content
    assert any("showing the sample customer instead" in text for text in page_messages(response))


@pytest.fixture
def preview_url():
    return reverse("admin:automations_emailtemplate_preview", args=[EmailTemplate.objects.get(name="Welcome").pk])


def test_send_me_a_test_while_resend_fails_shows_the_error(client, marketing_user, resend, preview_url):
    resend.fail_next(status=500, times=5)
    client.force_login(marketing_user)
    response = client.post(preview_url, follow=True)
    assert response.status_code == 200
    assert any("The test email could not be sent" in text for text in page_messages(response))
    assert b"The test email could not be sent" in response.content
    assert not resend.delivered
    (attempt,) = StaffTestSend.objects.all()
    assert "500" in attempt.error


def test_send_me_a_test_is_limited_per_staff_member(client, marketing_user, preview_url, superuser):
    client.force_login(marketing_user)
    for _ in range(TEST_SENDS_PER_MINUTE):
        assert client.post(preview_url).status_code == 302
    refused = client.post(preview_url, follow=True)
    assert any("wait a minute" in text for text in page_messages(refused))
    assert len(mail.outbox) == TEST_SENDS_PER_MINUTE

    # Another staff member has their own allowance, and a minute later the first one has theirs back.
    client.force_login(superuser)
    assert client.post(preview_url).status_code == 302
    assert len(mail.outbox) == TEST_SENDS_PER_MINUTE + 1
    StaffTestSend.objects.update(sent_at=timezone.now() - timedelta(minutes=2))
    client.force_login(marketing_user)
    client.post(preview_url)
    assert len(mail.outbox) == TEST_SENDS_PER_MINUTE + 2


@pytest.fixture
def superuser(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("owner", "owner@modready.example", "pw-owner-123")
