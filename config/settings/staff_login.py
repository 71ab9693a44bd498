"""Staff login: lockout, two-factor, Content-Security-Policy. Part of base.py."""

from datetime import timedelta

from .environment import env_bool, env_int

# --- Staff login: lockout (django-axes), two-factor (django-otp), Content-Security-Policy (django-csp) ---------------

# The client address for lockouts is read per TRUSTED_PROXY_COUNT (base.py; core/client_address.py).
# After AXES_FAILURE_LIMIT failed logins for one username (from anywhere), or for one username from one address, that
# username is refused for AXES_COOLOFF_MINUTES; every attempt during a lockout starts the cool-off again, so a script
# that keeps trying stays locked out while a person who waits gets back in. A success resets the count. Never on an
# address alone: behind a proxy the settings do not know about (TRUSTED_PROXY_COUNT = 0) every visitor shares the
# proxy's address, and one person's wrong guesses would lock out every staff member (the admin and /healthz warn).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_CLIENT_IP_CALLABLE = "core.client_address.client_address"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# A superuser without a TOTP device can use nothing but the two-factor setup page (on in production settings).
ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = env_bool("ADMIN_OTP_REQUIRED_FOR_SUPERUSERS", False)
OTP_TOTP_ISSUER = "ModReady back-office"
# The admin's device pages never show a device's secret or QR code: only its owner sees it, once, while enrolling.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# No third-party script anywhere: scripts, styles, fonts and frames only from this origin. Inline styles stay allowed
# (the admin's own templates and email previews use style attributes); inline scripts do not. Images may come from
# https (email previews show the email's images) and data: URIs (the admin's icons, Swagger UI).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
