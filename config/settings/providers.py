"""Email (Resend), Stripe, and each app's settings for the outside systems it talks to. Part of base.py.

What a provider needs in order to be used is declared next to its code (integrations/providers.py,
billing/providers.py) and checked at start by core/configuration.py.
"""

from django.core.exceptions import ImproperlyConfigured

from .environment import env, env_bool, env_int, env_list

# Email. With RESEND_API_KEY the Resend backend (django-anymail) sends; without it every send is refused (production
# requires the key or EMAIL_DELIVERY=disabled). config.settings.local puts emails into the local outbox instead
# (devtools.outbox: a table shown in the admin as "Outbox (local)") where a developer can read them.
# EMAIL_DELIVERY=disabled: the email queue sends nothing and marks nothing sent (due emails stay pending and go out
# once delivery is enabled again), and every other email (password resets, "send me a test") is refused with an
# error instead of being dropped. Production requires it to be set explicitly when Resend is not configured.
EMAIL_DELIVERY = env("EMAIL_DELIVERY", "enabled").lower()
if EMAIL_DELIVERY not in ("enabled", "disabled"):
    raise ImproperlyConfigured(f"EMAIL_DELIVERY must be enabled or disabled, not {EMAIL_DELIVERY!r}.")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "ModReady <hello@modready.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
RESEND_API_KEY = env("RESEND_API_KEY")
ANYMAIL = {
    "RESEND_API_KEY": RESEND_API_KEY,
    "RESEND_SIGNING_SECRET": env("RESEND_SIGNING_SECRET"),
    "RESEND_API_URL": env("RESEND_API_URL", "https://api.resend.com/"),
}
# anymail's Resend backend plus the Idempotency-Key header (integrations/resend/backend.py), or no sending at all.
EMAIL_BACKEND = "integrations.resend.backend.EmailBackend"
if EMAIL_DELIVERY == "disabled" or not RESEND_API_KEY:
    EMAIL_BACKEND = "integrations.email_disabled.EmailBackend"

# Stripe through dj-stripe. Keys are read from the environment; STRIPE_API_HOST is only for fakes (tests, benchmarks).
STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE")
STRIPE_LIVE_SECRET_KEY = env("STRIPE_LIVE_SECRET_KEY")
STRIPE_TEST_SECRET_KEY = env("STRIPE_TEST_SECRET_KEY")
STRIPE_API_VERSION = "2025-03-31.basil"
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
if env("STRIPE_API_HOST"):
    STRIPE_API_HOST = env("STRIPE_API_HOST")

# --- Billing (billing app) -------------------------------------------------------------------------------------------

# Only ModReady products make CRM records: a product counts when its id is listed here (comma-separated) or when
# its Stripe metadata has modready=true. Everything else stays in dj-stripe's mirror only.
MODREADY_STRIPE_PRODUCT_IDS = env_list("MODREADY_STRIPE_PRODUCT_IDS")
MODREADY_STRIPE_PRODUCT_METADATA_FLAG = "modready"
# Webhook deliveries larger than this are refused with 413 (Stripe's events are a few kilobytes).
BILLING_WEBHOOK_MAX_BYTES = env_int("BILLING_WEBHOOK_MAX_BYTES", 512 * 1024)
# Seconds a Stripe-Signature timestamp may be old (stripe-python's default).
BILLING_WEBHOOK_TOLERANCE = env_int("BILLING_WEBHOOK_TOLERANCE", 300)
# The id of dj-stripe's WebhookEndpoint row that `manage.py stripe_webhook_endpoint` writes from STRIPE_WEBHOOK_SECRET
# (the Stripe dashboard's we_... id when known; any stable id works, the row only holds the secret).
BILLING_WEBHOOK_ENDPOINT_ID = env("BILLING_WEBHOOK_ENDPOINT_ID", "we_modready_crm")
# Attempts before a failing Stripe event is given up (it stays in the admin, reprocessable by hand).
BILLING_EVENT_MAX_ATTEMPTS = env_int("BILLING_EVENT_MAX_ATTEMPTS", 8)
# The card-update link in dunning emails (billing/card_update.py): days a link stays valid after it is built, and
# where Stripe's portal sends the customer back (empty: this site's own "card updated" page).
BILLING_CARD_UPDATE_LINK_DAYS = env_int("BILLING_CARD_UPDATE_LINK_DAYS", 14)
BILLING_CARD_UPDATE_RETURN_URL = env("BILLING_CARD_UPDATE_RETURN_URL", "")
# The dunning holdout (billing/services/payment_failures.py): this share (0-100) of failed invoices, chosen by a
# stable hash of the invoice id, gets no dunning email while Stripe's retries go on, so the dashboard can compare
# recovery with and without the emails. 0 (the default) turns it off.
DUNNING_HOLDOUT_PERCENT = env_int("DUNNING_HOLDOUT_PERCENT", 0)
# Card-expiry warnings (billing/card_expiry.py): a card that expires before the next renewal is warned once, when the
# renewal is at most this many days away (with the daily sync, at least 14 days ahead for a card known that early).
BILLING_CARD_EXPIRY_NOTICE_DAYS = env_int("BILLING_CARD_EXPIRY_NOTICE_DAYS", 30)
# Goodwill credits (billing/support_actions.py): what one staff member may grant in total over 30 days, in minor
# units of the customer's currency (2000 = 20.00). Superusers are not limited.
BILLING_GOODWILL_CREDIT_LIMIT = env_int("BILLING_GOODWILL_CREDIT_LIMIT", 2000)
# The cancellation flow (billing/retention/): how long a cancel session's link works, how often one customer may be
# shown a save offer, and the share of sessions that gets none (the holdout the save rate is measured against).
BILLING_CANCEL_SESSION_MINUTES = env_int("BILLING_CANCEL_SESSION_MINUTES", 60)
BILLING_SAVE_OFFER_EVERY_MONTHS = env_int("BILLING_SAVE_OFFER_EVERY_MONTHS", 12)
BILLING_CANCEL_HOLDOUT_PERCENT = env_int("BILLING_CANCEL_HOLDOUT_PERCENT", 10)

# --- Automations (automations app) -----------------------------------------------------------------------------------
# How the email queue sends: "resend" (Resend's API through integrations/resend, batches of up to
# AUTOMATIONS_BATCH_SIZE) or "django" (one message at a time through EMAIL_BACKEND: the local outbox, locmem in tests).
AUTOMATIONS_EMAIL_TRANSPORT = env("AUTOMATIONS_EMAIL_TRANSPORT", "resend" if RESEND_API_KEY else "django")
if EMAIL_DELIVERY == "disabled":
    # Every send goes through EMAIL_BACKEND, which refuses it, even with a Resend key present ("send me a test" too).
    AUTOMATIONS_EMAIL_TRANSPORT = "django"
AUTOMATIONS_BATCH_SIZE = min(100, env_int("AUTOMATIONS_BATCH_SIZE", 100))  # Resend's batch endpoint takes 100 at most
# Calls per second to Resend, shared by all workers (Resend's limit is per team: 2 or 5 by default). Resend's
# `ratelimit-limit` answer header overrides it at run time; 0 turns pacing off (429s are still honoured).
AUTOMATIONS_RESEND_REQUESTS_PER_SECOND = float(env("AUTOMATIONS_RESEND_REQUESTS_PER_SECOND", "2"))
# A call whose outcome is unknown (5xx, timeout, dropped connection, 409 in progress) is retried unchanged under its
# key with exponential backoff (base * 2^(attempt-1), at most RETRY_MAX_SECONDS apart) until Resend answers or
# RETRY_WINDOW_SECONDS after the first call (Resend remembers a key for 24 h); then its emails become "unconfirmed".
# A 500 from Resend is usually over within seconds; the first retry comes after 5 s (then 10, 20, ...).
AUTOMATIONS_RETRY_BASE_SECONDS = env_int("AUTOMATIONS_RETRY_BASE_SECONDS", 5)
AUTOMATIONS_RETRY_MAX_SECONDS = env_int("AUTOMATIONS_RETRY_MAX_SECONDS", 1800)
AUTOMATIONS_RETRY_WINDOW_SECONDS = env_int("AUTOMATIONS_RETRY_WINDOW_SECONDS", 23 * 3600)
# While sending is paused by a configuration error (401/403), one probe call every this many seconds.
AUTOMATIONS_PAUSE_PROBE_SECONDS = env_int("AUTOMATIONS_PAUSE_PROBE_SECONDS", 60)
# Drains that may run at once (across all qcluster processes; each takes one django-q2 worker while it runs), and
# senders per drain: each sender has its own batch in flight, all under one shared pace (automations/pacing.py).
AUTOMATIONS_DRAIN_SLOTS = env_int("AUTOMATIONS_DRAIN_SLOTS", 2)
AUTOMATIONS_DRAIN_SENDERS = env_int("AUTOMATIONS_DRAIN_SENDERS", 8)
# Drains one qcluster process may run at once: 1 spreads them over the clusters, so a SIGKILLed cluster leaves a live
# drain that wakes a replacement within seconds. Raise it to AUTOMATIONS_DRAIN_SLOTS when only one qcluster runs.
AUTOMATIONS_DRAINS_PER_CLUSTER = env_int("AUTOMATIONS_DRAINS_PER_CLUSTER", 1)
# The lease of a running drain and of the batches it calls for, renewed by its heartbeat every third of it: a drain
# that died is replaced, and its batches are sent again (same idempotency key), once this many seconds have passed.
AUTOMATIONS_LEASE_SECONDS = env_int("AUTOMATIONS_LEASE_SECONDS", 10)
# Read timeout of one call to Resend, in seconds (connect timeout is 3 s).
AUTOMATIONS_SEND_TIMEOUT = float(env("AUTOMATIONS_SEND_TIMEOUT", "15"))
# How long one queue run may keep draining (the schedule runs every 2 minutes, below django-q2's task timeout); a task
# drain ends at a random 60-100% of it, so drains woken together do not all end together.
AUTOMATIONS_DRAIN_SECONDS = env_int("AUTOMATIONS_DRAIN_SECONDS", 90)
# Opens within this many seconds of delivery are counted as machine opens (privacy proxies, link scanners).
AUTOMATIONS_MACHINE_OPEN_SECONDS = env_int("AUTOMATIONS_MACHINE_OPEN_SECONDS", 10)
# Links used in email copy.
AUTOMATIONS_WEBSITE_URL = env("AUTOMATIONS_WEBSITE_URL", "https://modready.example")
AUTOMATIONS_DISCORD_URL = env("AUTOMATIONS_DISCORD_URL", "https://discord.gg/modready")
AUTOMATIONS_PANEL_URL = env("AUTOMATIONS_PANEL_URL", "https://panel.modready.example")
AUTOMATIONS_BILLING_URL = env("AUTOMATIONS_BILLING_URL", "https://modready.example/account/billing")

# --- Support over Discord (support app, integrations/discord) --------------------------------------------------------
# Discord POSTs interactions to /api/discord/interactions; the bot works through the REST API only (no gateway).
# DISCORD_ENABLED=1 requires the ids and keys below and fails at start naming the missing ones
# (integrations/providers.py, checked by core/configuration.py).
DISCORD_ENABLED = env_bool("DISCORD_ENABLED")
DISCORD_APPLICATION_ID = env("DISCORD_APPLICATION_ID")
DISCORD_PUBLIC_KEY = env("DISCORD_PUBLIC_KEY")  # hex, from the developer portal: verifies interaction signatures
DISCORD_BOT_TOKEN = env("DISCORD_BOT_TOKEN")
DISCORD_GUILD_ID = env("DISCORD_GUILD_ID")
DISCORD_STAFF_ROLE_ID = env("DISCORD_STAFF_ROLE_ID")
DISCORD_SUPPORT_CHANNEL_ID = env("DISCORD_SUPPORT_CHANNEL_ID")
# Ticket categories in order: the first is used until it holds 50 channels, then the next (overflow).
DISCORD_TICKET_CATEGORY_IDS = env_list("DISCORD_TICKET_CATEGORY_IDS")
DISCORD_API_URL = env("DISCORD_API_URL", "https://discord.com/api/v10")  # tests and benchmarks point it at a fake
DISCORD_TIMEOUT = float(env("DISCORD_TIMEOUT", "15"))  # read timeout of one REST call, seconds
# Support hours: days (mon-sun, ranges allowed) and a time range in DISCORD_SUPPORT_TIMEZONE. Outside them tickets
# still open, with a notice of when staff are back. Empty = always staffed.
DISCORD_SUPPORT_HOURS = env("DISCORD_SUPPORT_HOURS", "mon-fri 09:00-18:00")
DISCORD_SUPPORT_TIMEZONE = env("DISCORD_SUPPORT_TIMEZONE", "Europe/Berlin")
DISCORD_MAX_OPEN_TICKETS_PER_USER = env_int("DISCORD_MAX_OPEN_TICKETS_PER_USER", 3)
DISCORD_REOPEN_COOLDOWN_MINUTES = env_int("DISCORD_REOPEN_COOLDOWN_MINUTES", 10)
# Minutes the emailed link that connects a Discord account to a customer stays valid (support/identity.py).
DISCORD_LINK_CONFIRM_MINUTES = env_int("DISCORD_LINK_CONFIRM_MINUTES", 30)
# Inactivity: a warning after DISCORD_AUTOCLOSE_WARN_HOURS without a message, the close DISCORD_AUTOCLOSE_GRACE_HOURS
# after the warning if still nothing was said.
DISCORD_AUTOCLOSE_WARN_HOURS = env_int("DISCORD_AUTOCLOSE_WARN_HOURS", 48)
DISCORD_AUTOCLOSE_GRACE_HOURS = env_int("DISCORD_AUTOCLOSE_GRACE_HOURS", 24)
# Attachments larger than this are kept as metadata only in the transcript (bytes).
DISCORD_ATTACHMENT_MAX_BYTES = env_int("DISCORD_ATTACHMENT_MAX_BYTES", 8 * 1024 * 1024)
# The ticket page (support/workspace.py): the channel's messages are read when it opens and kept this many seconds
# (its Refresh button reads again); a close request without an answer closes the ticket after
# DISCORD_CLOSE_REQUEST_HOURS; on close the customer gets the transcript by direct message unless this is off.
DISCORD_CONVERSATION_CACHE_SECONDS = env_int("DISCORD_CONVERSATION_CACHE_SECONDS", 30)
DISCORD_CLOSE_REQUEST_HOURS = env_int("DISCORD_CLOSE_REQUEST_HOURS", 24)
DISCORD_TRANSCRIPT_DM = env_bool("DISCORD_TRANSCRIPT_DM", True)

# --- Integrations (integrations app): the crowdfunding workflows and the trials sync ---------------------------------
# Each provider is off unless its *_ENABLED flag is set; an enabled provider with a missing variable stops the process
# at start (integrations/providers.py, checked by core/configuration.py), naming the variable.
MAUTIC_ENABLED = env_bool("MAUTIC_ENABLED")
MAUTIC_BASE_URL = env("MAUTIC_BASE_URL")  # e.g. https://mautic.modready.example (the API is under /api)
MAUTIC_USERNAME = env("MAUTIC_USERNAME")  # Basic auth (enable it in Mautic's API settings)
MAUTIC_PASSWORD = env("MAUTIC_PASSWORD")
MAUTIC_WEBHOOK_SECRET = env("MAUTIC_WEBHOOK_SECRET")  # the secret of the webhook in Mautic, verifies Webhook-Signature
MAUTIC_EMAIL_INVITE_VIP = env("MAUTIC_EMAIL_INVITE_VIP")  # Mautic email ids sent by the workflows
MAUTIC_EMAIL_INVITE_BASIC = env("MAUTIC_EMAIL_INVITE_BASIC")
MAUTIC_EMAIL_COUPON = env("MAUTIC_EMAIL_COUPON")
MAUTIC_WEBHOOK_MAX_BYTES = env_int("MAUTIC_WEBHOOK_MAX_BYTES", 1024 * 1024)

SHOPWARE_ENABLED = env_bool("SHOPWARE_ENABLED")
SHOPWARE_BASE_URL = env("SHOPWARE_BASE_URL")  # the shop's URL; the Admin API is under /api
SHOPWARE_CLIENT_ID = env("SHOPWARE_CLIENT_ID")  # an integration's access key id (client credentials)
SHOPWARE_CLIENT_SECRET = env("SHOPWARE_CLIENT_SECRET")
SHOPWARE_VIP_PROMOTION_ID = env("SHOPWARE_VIP_PROMOTION_ID")  # with useCodes and useIndividualCodes on

ESPOCRM_ENABLED = env_bool("ESPOCRM_ENABLED")
ESPOCRM_BASE_URL = env("ESPOCRM_BASE_URL")  # the API is under /api/v1
ESPOCRM_API_KEY = env("ESPOCRM_API_KEY")

DISCORD_INVITES_ENABLED = env_bool("DISCORD_INVITES_ENABLED")
DISCORD_INVITE_CHANNEL_ID = env("DISCORD_INVITE_CHANNEL_ID")  # the channel the invites open on
# Seconds an invite lives (0 = forever, at most 604800). Discord's own default is 24 hours, which would expire
# links people read days later; a week is Discord's longest finite age, and expired invites free the 1,000 cap.
DISCORD_INVITE_MAX_AGE = env_int("DISCORD_INVITE_MAX_AGE", 604800)
DISCORD_INVITE_ROLE_ID_VIP = env("DISCORD_INVITE_ROLE_ID_VIP")  # granted on acceptance (needs MANAGE_ROLES); optional
DISCORD_INVITE_ROLE_ID_BASIC = env("DISCORD_INVITE_ROLE_ID_BASIC")

# The Stripe product whose purchase is a VIP reservation (workflow 2).
STRIPE_VIP_RESERVATION_PRODUCT_ID = env("STRIPE_VIP_RESERVATION_PRODUCT_ID")

# Failed workflow runs are retried with exponential backoff (base * 2^(attempt-1), at most 6 h) up to this many times.
INTEGRATIONS_RUN_MAX_ATTEMPTS = env_int("INTEGRATIONS_RUN_MAX_ATTEMPTS", 8)
INTEGRATIONS_RETRY_BASE_SECONDS = env_int("INTEGRATIONS_RETRY_BASE_SECONDS", 60)
# A running workflow run holds a lease of this many seconds, renewed while it works; a run whose worker died is
# resumed by the next minute's sweep once its lease has run out.
INTEGRATIONS_RUN_LEASE_SECONDS = env_int("INTEGRATIONS_RUN_LEASE_SECONDS", 30)

# The website's trial signups (SQLite, opened read-only) synced daily at 07:00 UTC.
TRIALS_DB_PATH = env("TRIALS_DB_PATH", "/var/www/modready-api/trials.db")
TRIALS_TABLE = env("TRIALS_TABLE", "trials")

# --- Marketing consent (customers.consent, automations/send_gates.py) ------------------------------------------------
# The From of marketing email (every email of a marketing template): its own address, ideally on its own sending
# (sub)domain verified at Resend, so a complaint wave against marketing does not hurt the reputation that receipts,
# dunning and ticket notices (DEFAULT_FROM_EMAIL) are delivered on.
MARKETING_FROM_EMAIL = env("MARKETING_FROM_EMAIL", DEFAULT_FROM_EMAIL)
# At most this many marketing emails per customer within MARKETING_FREQUENCY_CAP_HOURS (0: no cap). A queue item
# with a frequency_cap_override (a critical announcement) ignores it.
MARKETING_FREQUENCY_CAP = env_int("MARKETING_FREQUENCY_CAP", 3)
MARKETING_FREQUENCY_CAP_HOURS = env_int("MARKETING_FREQUENCY_CAP_HOURS", 7 * 24)
# No marketing email from START:00 to END:00 in the customer's own time zone (START == END: no quiet hours).
MARKETING_QUIET_HOURS_START = env_int("MARKETING_QUIET_HOURS_START", 21)
MARKETING_QUIET_HOURS_END = env_int("MARKETING_QUIET_HOURS_END", 8)
# The time zone of a customer whose zone is unknown (no country from Stripe, or one not in customers/time_zones.py).
CUSTOMER_DEFAULT_TIME_ZONE = env("CUSTOMER_DEFAULT_TIME_ZONE", "Europe/Berlin")
