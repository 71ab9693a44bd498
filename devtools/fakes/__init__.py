"""The one home of the fakes of outside systems, shared by the tests, bench/ and the local run (bin/run):

- server.py: the fake-server harness (a threaded HTTP server on 127.0.0.1 with failure switches);
- stripe/: the one Stripe object builder (objects.py, fixtures/), the fake Stripe API (server.py), the local run's
  stand-in (standin.py) and seed_demo's in-process adapter (in_process.py);
- discord/: the fake Discord (server.py with channels.py and messages.py), signed interactions (interactions.py) and
  the local run's stand-in (standin.py);
- resend.py, mautic.py, shopware.py, espocrm.py: the other providers; webhook_receiver.py and slow_receiver.py: the
  receivers of our outgoing webhooks (tls/ holds their test CA and certificate).

This module holds only the stand-ins' keys and ids, so that config.settings.local can read them without importing a
fake."""

# The API key of the local Stripe stand-in. Nothing to protect: it opens a stand-in on 127.0.0.1, never Stripe.
STANDIN_SECRET_KEY = "sk_test_" + "0" * 24 + "localstandin"

# The Discord stand-in's bot token and ids (devtools/fakes/discord/), here so that config.settings.local can use
# them without importing the stand-in. Nothing to protect: they open nothing but the stand-in on 127.0.0.1.
DISCORD_BOT_TOKEN = "fake-bot-token.modready-tests"
DISCORD_APPLICATION_ID = "1100000000000000001"
DISCORD_GUILD_ID = "1200000000000000001"
DISCORD_STAFF_ROLE_ID = "1300000000000000001"
DISCORD_SUPPORT_CHANNEL_ID = "1400000000000000001"
DISCORD_CATEGORY_IDS = ("1500000000000000001", "1500000000000000002")
DISCORD_API_PREFIX = "/api/v10"
