"""Whether a staff session's second factor is as strong as the account asks for: shared by the admin site and the
REST API's session authentication."""

from django.conf import settings
from django_otp import user_has_device


def has_otp_device(user) -> bool:
    # Asked several times per admin request (has_permission runs for the page, the menu, the sidebar): once per user.
    if not hasattr(user, "_modready_has_otp_device"):
        user._modready_has_otp_device = user_has_device(user)
    return user._modready_has_otp_device


def otp_enrollment_required(user) -> bool:
    """A staff member who must enrol a device before using the admin."""
    return (
        getattr(settings, "ADMIN_OTP_REQUIRED_FOR_SUPERUSERS", False) and user.is_superuser and not has_otp_device(user)
    )


def otp_satisfied(user) -> bool:
    """True when the session's second factor is as strong as this user's account asks for."""
    if has_otp_device(user):
        # is_verified is installed by django-otp's middleware; a user authenticated some other way is not verified.
        return bool(getattr(user, "is_verified", lambda: False)())
    return not otp_enrollment_required(user)
