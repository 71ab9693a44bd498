"""Local stand-ins for outside systems: the fake-server harness and the Stripe stand-in (tests use them too)."""

# The API key of the local Stripe stand-in. Nothing to protect: it opens a stand-in on 127.0.0.1, never Stripe.
STANDIN_SECRET_KEY = "sk_test_" + "0" * 24 + "localstandin"
