"""config.settings.local: PORT sets the links, emails go to the outbox, without Stripe keys Stripe is a stand-in, and
without a Discord bot token Discord is one."""

import os
import subprocess
import sys

PRINT = (
    "import django; django.setup(); from django.conf import settings as s; import stripe; "
    "print(s.SITE_URL, s.EMAIL_BACKEND, stripe.api_base, (s.STRIPE_WEBHOOK_SECRET or '-')[:6])"
)


def local(tmp_path, code: str = PRINT, **env: str) -> list[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "RESEND_", "SITE_URL", "PORT", "DISCORD_"))
    }
    clean.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
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


DISCORD = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DISCORD_API_URL, s.DISCORD_GUILD_ID or '-', len(s.DISCORD_TICKET_CATEGORY_IDS))"
)


def test_without_a_bot_token_discord_is_the_stand_in_on_port_plus_11000(tmp_path):
    api_url, guild, categories = local(tmp_path, DISCORD, PORT="9000")
    assert api_url == "http://127.0.0.1:20000/api/v10"
    assert guild == "1200000000000000001" and categories == "2"
    api_url, guild, _ = local(tmp_path, DISCORD, PORT="9000", DISCORD_BOT_TOKEN="a-real-token")
    assert api_url == "https://discord.com/api/v10" and guild == "-"
