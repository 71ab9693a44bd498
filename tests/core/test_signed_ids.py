"""Links already in customers' mailboxes were made before core.signed_ids: they must read back the same."""

import time
from unittest import mock

import pytest
from django.core import signing
from django.test import override_settings

from core.signed_ids import id_token_make, id_token_read, timed_id_token_make, timed_id_token_read


def test_an_untimed_link_made_the_old_way_still_opens_and_is_made_the_same():
    old = signing.Signer(salt="automations.preferences").sign(signing.b62_encode(4711))
    assert id_token_read(salt="automations.preferences", token=old) == 4711
    assert id_token_make(salt="automations.preferences", id=4711) == old


def test_an_untimed_link_under_another_salt_or_edited_opens_nothing():
    token = id_token_make(salt="automations.preferences", id=4711)
    assert id_token_read(salt="automations.unsubscribe.item", token=token) is None
    assert id_token_read(salt="automations.preferences", token=token[:-1]) is None
    assert id_token_read(salt="automations.preferences", token="preview") is None


def test_a_timed_link_made_the_old_way_still_opens():
    old = signing.dumps({"c": 12}, salt="billing.card-update-link", compress=False)
    link = timed_id_token_read(salt="billing.card-update-link", key="c", token=old, max_age_seconds=60)
    assert (link.state, link.id) == ("valid", 12)


def test_a_timed_link_past_its_age_says_expired_not_invalid():
    real_time = time.time
    with mock.patch("time.time", lambda: real_time() - 601):
        token = timed_id_token_make(salt="billing.cancel-session", key="s", id=3)
    link = timed_id_token_read(salt="billing.cancel-session", key="s", token=token, max_age_seconds=600)
    assert (link.state, link.id) == ("expired", None)
    with mock.patch("time.time", lambda: real_time() - 590):
        fresh = timed_id_token_make(salt="billing.cancel-session", key="s", id=3)
    link = timed_id_token_read(salt="billing.cancel-session", key="s", token=fresh, max_age_seconds=600)
    assert (link.state, link.id) == ("valid", 3)


@pytest.mark.parametrize("payload", [{"s": "3"}, {"s": True}, {"x": 3}, [3]])
def test_a_timed_link_signed_by_us_but_naming_no_id_is_invalid(payload):
    token = signing.dumps(payload, salt="billing.cancel-session", compress=False)
    link = timed_id_token_read(salt="billing.cancel-session", key="s", token=token, max_age_seconds=600)
    assert link.state == "invalid"


def test_a_timed_link_signed_with_a_retired_key_still_opens():
    with override_settings(SECRET_KEY="old-key-" + "x" * 50):
        token = timed_id_token_make(salt="billing.card-update-link", key="c", id=9)
    with override_settings(SECRET_KEY="new-key-" + "y" * 50, SECRET_KEY_FALLBACKS=["old-key-" + "x" * 50]):
        link = timed_id_token_read(salt="billing.card-update-link", key="c", token=token, max_age_seconds=60)
    assert (link.state, link.id) == ("valid", 9)
