"""Production: PostgreSQL, HTTPS behind a proxy, nothing defaulted that could leak.

DEBUG is forced off here whatever the environment says: dj-stripe honours an `X-Djstripe-Webhook-Secret` request
header that overrides the webhook secret when DEBUG is on, so DEBUG in production would let anyone forge events.

Email: production sends through Resend and needs SITE_URL (the links in emails), RESEND_API_KEY and
RESEND_SIGNING_SECRET. A deployment that must run without email says so with EMAIL_DELIVERY=disabled: then the queue
holds its emails pending and nothing is marked sent (base.py). Without either, start-up fails naming the variable.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .environment import env_bool, env_int, env_list, env_required
from .providers import EMAIL_DELIVERY

DEBUG = False
SECRET_KEY = env_required("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or [env_required("ALLOWED_HOSTS")]
if "*" in ALLOWED_HOSTS:
    # "*" answers any Host header: password-reset and email links built from it could point at an attacker's site.
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must name this site's host names (e.g. crm.modready.example), not '*': "
        "a wildcard accepts any Host header."
    )
DATABASES = {"default": database_config(env_required("DATABASE_URL"))}

if EMAIL_DELIVERY != "disabled":
    # base.py has read them already (and picked the Resend backend and transport from RESEND_API_KEY); here their
    # absence stops the start, naming the first one missing. EMAIL_DELIVERY=disabled is the explicit way out.
    for required in ("SITE_URL", "RESEND_API_KEY", "RESEND_SIGNING_SECRET"):
        env_required(required)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Superusers must enrol a TOTP device before they can use the admin (config/admin_site.py).
ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = True
