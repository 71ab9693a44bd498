"""The hosted cancel page: reason, offer, choice; a double submit, a reload or the back button changes Stripe once;
bad input is a 4xx with nothing applied; expired or changed links explain themselves."""

import time
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.cache import cache

from billing.retention.models import CancelSession
from billing.retention.sessions import SALT, CancelSessionRefused, cancel_session_create, cancel_session_url

from .cancel_world import deliver_emitted, offer, subscribed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limit(settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 0
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def page(fake_stripe, deliver):
    offer("too_expensive", "pause", pause_months=2)
    world, subscription = subscribed(fake_stripe, deliver)
    session = cancel_session_create(subscription=subscription)
    return urlsplit(cancel_session_url(session=session)).path, session, world


def test_the_page_asks_why_then_shows_the_offer_and_what_each_choice_does(client, page):
    path, session, _world = page
    first = client.get(path)
    assert first.status_code == 200 and first["Cache-Control"] == "no-store"
    text = first.content.decode()
    assert "Why do you want to cancel?" in text and 'value="too_complex"' in text and "<script" not in text

    answer = client.post(path, {"step": "reason", "reason": "too_expensive", "comment": "Money is tight"})
    assert answer.status_code == 303 and answer["Location"] == path

    offer_page = client.get(path).content.decode()
    assert "Pause for 2 months instead" in offer_page
    assert "Your server is suspended during the pause. Its files and settings are kept" in offer_page
    assert "Cancel my subscription on" in offer_page and "You will not be charged again." in offer_page
    session.refresh_from_db()
    assert (session.reason, session.comment, session.offer_kind) == ("too_expensive", "Money is tight", "pause")


def test_accepting_twice_and_reloading_pauses_once(client, page, fake_stripe, deliver):
    path, session, world = page
    client.post(path, {"step": "reason", "reason": "too_expensive"})

    first = client.post(path, {"step": "decide", "choice": "accept"})
    second = client.post(path, {"step": "decide", "choice": "accept"})  # a double click
    back = client.post(path, {"step": "decide", "choice": "cancel"})  # the back button, then the other choice
    done = client.get(path)

    assert first.status_code == second.status_code == back.status_code == 303
    assert "Done: your subscription stays" in done.content.decode()
    assert len(fake_stripe.subscription_updates) == 1
    assert fake_stripe.get(world.subscription["id"])["cancel_at_period_end"] is False
    deliver_emitted(fake_stripe, deliver)
    session.refresh_from_db()
    assert session.outcome == "accepted" and session.subscription.pause_behavior == "void"


def test_a_reload_sends_a_change_stripe_did_not_answer_again_under_its_key(client, page, fake_stripe):
    path, session, _world = page
    client.post(path, {"step": "reason", "reason": "too_expensive"})
    fake_stripe.fail_next(502, times=2)

    client.post(path, {"step": "decide", "choice": "cancel"})
    session.refresh_from_db()
    assert session.change.status == "applying" and fake_stripe.subscription_updates == []

    reloaded = client.get(path)

    assert "Your subscription is canceled at the end of the period" in reloaded.content.decode()
    calls = fake_stripe.requests_to("POST", r"/v1/subscriptions/[^/]+")
    assert len(calls) == 3 and len({call.header("idempotency-key") for call in calls}) == 1
    assert len(fake_stripe.subscription_updates) == 1


@pytest.mark.parametrize(
    "data",
    [
        {"step": "reason", "reason": "because"},
        {"step": "reason"},
        {"step": "decide", "choice": "accept"},  # no reason yet
        {"step": "sideways"},
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(client, page, fake_stripe, data):
    path, session, _world = page
    response = client.post(path, data)
    assert response.status_code == 400
    session.refresh_from_db()
    assert session.reason == "" and session.outcome == "" and fake_stripe.requests_to("POST", r"/v1/.*") == []


def test_an_expired_or_changed_link_says_what_to_do(client, page, settings):
    path, session, _world = page
    changed = client.get(path[:-3] + "abc")
    assert changed.status_code == 400 and 'Press "Cancel" in your server panel again' in changed.content.decode()
    settings.BILLING_CANCEL_SESSION_MINUTES = 30
    real_time = time.time
    with mock.patch("time.time", lambda: real_time() - 31 * 60):
        old = signing.dumps({"s": session.pk}, salt=SALT, compress=False)
    expired = client.get(f"/billing/cancel/{old}")
    assert expired.status_code == 410 and "This link has expired" in expired.content.decode()


def test_a_subscription_already_set_to_cancel_has_nothing_to_cancel(client, page, fake_stripe, deliver):
    path, session, _world = page
    client.post(path, {"step": "reason", "reason": "other"})
    client.post(path, {"step": "decide", "choice": "cancel"})
    deliver_emitted(fake_stripe, deliver)
    session.subscription.refresh_from_db()

    assert session.subscription.cancel_at_period_end
    with pytest.raises(CancelSessionRefused):
        cancel_session_create(subscription=session.subscription)
    assert CancelSession.objects.count() == 1
