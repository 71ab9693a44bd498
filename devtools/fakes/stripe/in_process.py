"""The fake Stripe answered in-process: stripe-python's HTTP client over a FakeStripe, with no socket in between.

Processing a Stripe event re-fetches its object from Stripe (dj-stripe's sync, billing's "current state" check).
seed_demo has no Stripe account and must run offline, so while it plays its history it installs this adapter as
stripe-python's HTTP client (`stripe.default_http_client`, the library's seam for custom transports): every call
dj-stripe and billing make is answered by the same FakeStripe routes the tests use, from the objects the demo built
with the one Stripe object builder (devtools/fakes/stripe/objects.py), each as it stands at the moment being
replayed. Nothing leaves the process, whatever keys the environment holds.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import stripe
from stripe._http_client import HTTPClient

from devtools.fakes.server import FakeRequest
from devtools.fakes.stripe.server import FakeStripe


class InProcessStripe(HTTPClient):
    """Hands each request stripe-python makes to `fake` (a FakeStripe that is never served) and returns its answer."""

    name = "modready-in-process-stripe"

    def __init__(self, fake: FakeStripe):
        super().__init__()
        self.fake = fake

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        body = post_data.encode() if isinstance(post_data, str) else post_data or b""
        request = FakeRequest(
            method=method.upper(),
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={key.lower(): value for key, value in (headers or {}).items()},
            body=body,
        )
        response = self.fake.answer(request)
        payload, response_headers = response.encode()
        return payload.decode(), response.status, {**response_headers, "Request-Id": "req_modready_in_process"}

    def close(self):
        pass


@contextmanager
def installed(fake: FakeStripe) -> Iterator[FakeStripe]:
    """stripe-python talks to `fake` in-process inside the block, and to what it talked to before after it."""
    from billing.retention import stripe_calls  # the cancellation flow's writes keep their own client

    previous, previous_retries = stripe.default_http_client, stripe.max_network_retries
    previous_changes = stripe_calls.http_client_override
    stripe.default_http_client, stripe.max_network_retries = InProcessStripe(fake), 0
    stripe_calls.http_client_override = InProcessStripe(fake)
    try:
        yield fake
    finally:
        stripe.default_http_client, stripe.max_network_retries = previous, previous_retries
        stripe_calls.http_client_override = previous_changes
