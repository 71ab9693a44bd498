"""config.settings.local: PORT sets the links, emails go to the outbox, without Stripe keys Stripe is a stand-in."""

import os
import subprocess
import sys

PRINT = (
    "import django; django.setup(); from django.conf import settings as s; import stripe; "
    "print(s.SITE_URL, s.EMAIL_BACKEND, stripe.api_base, (s.STRIPE_WEBHOOK_SECRET or '-')[:6])"
)


def local(tmp_path, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "RESEND_", "SITE_URL", "PORT"))}
    clean.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", PRINT],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.local", "MODREADY_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_port_sets_the_site_url_and_the_stand_ins_port(tmp_path):
    site, backend, stripe_base, secret = local(tmp_path, PORT="9000")
    assert site == "http://127.0.0.1:9000"
    assert backend == "devtools.outbox.EmailBackend"
    assert stripe_base == "http://127.0.0.1:19000"
    assert secret == "whsec_"
    assert (tmp_path / "stripe-standin-webhook-secret").read_text().startswith("whsec_")


def test_a_stripe_key_means_real_stripe_and_site_url_wins_over_port(tmp_path):
    site, _, stripe_base, _ = local(
        tmp_path, PORT="9000", SITE_URL="https://crm.example", STRIPE_TEST_SECRET_KEY="sk_test_" + "1" * 24
    )
    assert site == "https://crm.example"
    assert stripe_base == "https://api.stripe.com"
