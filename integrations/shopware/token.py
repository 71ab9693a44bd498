"""Shopware's access token, kept for its ten minutes and shared by every task and process.

Shopware issues client-credentials tokens that live `expires_in` (600) seconds, with no refresh token
(docs/providers.md). A client per run used to fetch its own: 128 tokens for 116 purchases. The token now lives in
one `ProviderAccessToken` row per credentials: a call uses it until REFRESH_MARGIN before it expires, then the first
worker to notice fetches a new one while holding the row's lock (the others wait for that one instead of fetching
their own), and a 401 discards it so the next call fetches a fresh one.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from integrations.models import ProviderAccessToken

REFRESH_MARGIN = timedelta(seconds=60)


def access_token_get(*, key: str, fetch: Callable[[], tuple[str, int]]) -> tuple[str, datetime]:
    """The shared token for `key` and when it expires; `fetch()` -> (token, expires_in seconds) makes a new one when
    the stored one expires within REFRESH_MARGIN."""
    fresh = (
        ProviderAccessToken.objects.filter(key=key, expires_at__gt=timezone.now() + REFRESH_MARGIN)
        .values_list("token", "expires_at")
        .first()
    )
    if fresh:
        return fresh
    ProviderAccessToken.objects.bulk_create(
        [ProviderAccessToken(key=key, token="", expires_at=timezone.now())], ignore_conflicts=True
    )
    with transaction.atomic():
        row = ProviderAccessToken.objects.select_for_update().get(key=key)
        if row.token and row.expires_at > timezone.now() + REFRESH_MARGIN:
            return row.token, row.expires_at  # another worker fetched it while we waited for the lock
        # A token request changes nothing at the provider, so it may run inside the transaction: holding the row
        # means one fetch per expiry, whatever the number of workers.
        token, expires_in = fetch()
        now = timezone.now()
        row.token, row.expires_at, row.fetched_at = token, now + timedelta(seconds=expires_in), now
        row.save(update_fields=["token", "expires_at", "fetched_at"])
    return row.token, row.expires_at


def access_token_discard(*, key: str, token: str) -> None:
    """The provider refused `token` (401: revoked, or expired early): the next call fetches another. Only that token
    is discarded, so a 401 seen late never throws away the fresh one another worker just fetched."""
    ProviderAccessToken.objects.filter(key=key, token=token).update(token="", expires_at=timezone.now())
