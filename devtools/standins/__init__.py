"""Local stand-ins for outside systems: the fake-server harness, the Stripe and Discord stand-ins (tests use them
too)."""

# The API key of the local Stripe stand-in. Nothing to protect: it opens a stand-in on 127.0.0.1, never Stripe.
STANDIN_SECRET_KEY = "sk_test_" + "0" * 24 + "localstandin"

# The Discord stand-in's bot token and ids (devtools/standins/discord.py), here so that config.settings.local can use
# them without importing the stand-in. Nothing to protect: they open nothing but the stand-in on 127.0.0.1.
DISCORD_BOT_TOKEN = "fake-bot-token.modready-tests"  # noqa: S105
DISCORD_APPLICATION_ID = "1100000000000000001"
DISCORD_GUILD_ID = "1200000000000000001"
DISCORD_STAFF_ROLE_ID = "1300000000000000001"
DISCORD_SUPPORT_CHANNEL_ID = "1400000000000000001"
DISCORD_CATEGORY_IDS = ("1500000000000000001", "1500000000000000002")
DISCORD_API_PREFIX = "/api/v10"
