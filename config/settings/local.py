"""Local run on one machine: embedded SQLite unless DATABASE_URL is set, emails kept in the local outbox (admin:
"Outbox (local)"), and without Stripe keys or a Discord bot token, Stripe and Discord stand-ins on 127.0.0.1 that
bin/run serves.

DEBUG stays off unless the environment turns it on (bin/run does, for a developer's own machine).
"""

import secrets

from .base import *  # noqa: F403
from .base import EMAIL_DELIVERY, INSTALLED_APPS, RESEND_API_KEY, VAR_DIR
from .environment import env, env_bool, env_int, env_list

# devtools (the demo, the stand-ins, the outbox, run_local) is installed here, in tests and in benchmarks only.
INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")


def _local_secret(name: str, prefix: str = "") -> str:
    """A secret kept in var/ so it survives restarts (sessions, the stand-in's webhook signatures); production must
    set its secrets itself."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(prefix + secrets.token_urlsafe(32 if prefix else 50))
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY") or _local_secret("secret_key")

# Without a Resend key, emails go into the local outbox (admin: "Outbox (local)") instead of being refused.
if not RESEND_API_KEY and EMAIL_DELIVERY != "disabled":
    EMAIL_BACKEND = "devtools.outbox.EmailBackend"

# bin/run serves on 127.0.0.1:$PORT; links in emails and notifications point there unless SITE_URL says otherwise.
PORT = env_int("PORT", 8000)
SITE_URL = env("SITE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")

# Without a Stripe key the local run talks to the Stripe stand-in (devtools/fakes/stripe/standin.py) that bin/run serves
# on 127.0.0.1:$STRIPE_STANDIN_PORT (default PORT + 10000): event processing, which re-fetches objects from Stripe, and
# the daily sync work offline, and `manage.py demo_journey` plays a customer's journey against it. The webhook secret
# is kept in var/ and configured by `manage.py stripe_webhook_endpoint`, which bin/run runs.
STRIPE_STANDIN = not (env("STRIPE_TEST_SECRET_KEY") or env("STRIPE_LIVE_SECRET_KEY") or env("STRIPE_API_HOST"))
if STRIPE_STANDIN:
    from devtools.fakes import STANDIN_SECRET_KEY

    STRIPE_STANDIN_PORT = env_int("STRIPE_STANDIN_PORT", PORT + 10000)
    STRIPE_API_HOST = f"http://127.0.0.1:{STRIPE_STANDIN_PORT}"
    # dj-stripe warns that STRIPE_API_HOST "should not be set in production"; here it is the point.
    SILENCED_SYSTEM_CHECKS = [*globals().get("SILENCED_SYSTEM_CHECKS", []), "djstripe.W002"]
    STRIPE_LIVE_MODE = False
    STRIPE_TEST_SECRET_KEY = STANDIN_SECRET_KEY
    STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET") or _local_secret("stripe-standin-webhook-secret", "whsec_")

# Without a Discord bot token the local run's Discord is a stand-in too (devtools/fakes/discord/standin.py), served
# by bin/run on 127.0.0.1:$DISCORD_STANDIN_PORT (default PORT + 11000) with the channels of the demo's open tickets:
# the support schedules and the admin's ticket actions (close, reopen) work offline against it.
DISCORD_STANDIN = not env("DISCORD_BOT_TOKEN")
if DISCORD_STANDIN:
    from devtools import fakes

    DISCORD_STANDIN_PORT = env_int("DISCORD_STANDIN_PORT", PORT + 11000)
    DISCORD_API_URL = f"http://127.0.0.1:{DISCORD_STANDIN_PORT}{fakes.DISCORD_API_PREFIX}"
    DISCORD_BOT_TOKEN = fakes.DISCORD_BOT_TOKEN
    DISCORD_APPLICATION_ID = fakes.DISCORD_APPLICATION_ID
    DISCORD_GUILD_ID = fakes.DISCORD_GUILD_ID
    DISCORD_STAFF_ROLE_ID = fakes.DISCORD_STAFF_ROLE_ID
    DISCORD_SUPPORT_CHANNEL_ID = fakes.DISCORD_SUPPORT_CHANNEL_ID
    DISCORD_TICKET_CATEGORY_IDS = list(fakes.DISCORD_CATEGORY_IDS)

# A developer's receiver usually runs on this machine over plain http (production refuses both).
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", True)
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP", True)
# bin/run loads demo customers and an admin login (devtools/management/commands/seed_demo.py).
SEED_DEMO_ALLOWED = True
