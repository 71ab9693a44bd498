"""Who is calling: a service account's API key, or a staff member's browser session."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework_api_key.permissions import KeyParser

from core.two_factor import otp_satisfied

from .models import ServiceAccountKey


class TwoFactorSessionAuthentication(authentication.SessionAuthentication):
    """A staff member's admin session, counted only where the admin itself would let it in: an active staff member
    whose session passed the second factor wherever the admin asks for one (a device enrolled, or a superuser who
    must enrol: core.two_factor.otp_satisfied). A password-only session of such a user is refused with 401, so the
    API is no way around two-factor."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not user.is_staff:
            raise exceptions.AuthenticationFailed("Only staff sessions may use the API; tools use an API key.")
        if not otp_satisfied(user):
            raise exceptions.AuthenticationFailed(
                "This session has not passed two-factor authentication: log in to the admin with the code from your "
                "authenticator app (or set up two-factor there first)."
            )
        return result


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <prefix>.<secret>` -> (the key's service account user, the key).

    A revoked, expired or unknown key, or one whose service account is inactive, is refused with 401. The last-used
    time is written at most once per `API_KEY_LAST_USED_RESOLUTION` seconds, so a busy tool does not turn every read
    into a write.
    """

    keyword = KeyParser.keyword

    def authenticate(self, request):
        key = KeyParser().get_from_authorization(request._request)
        if not key:
            return None
        try:
            api_key = ServiceAccountKey.objects.get_from_key(key)
        except ServiceAccountKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.") from None
        if api_key.has_expired or not api_key.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION)
        if api_key.last_used_at is None or api_key.last_used_at < now - resolution:
            ServiceAccountKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
        permissions_load(api_key.user)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword


def permissions_load(user) -> None:
    """The service account's permissions, its own and its groups', in one query instead of ModelBackend's two, kept
    where ModelBackend keeps them for the rest of the request (`_perm_cache`, see "Permission caching" in Django's
    auth docs). The same set ModelBackend would compute; a superuser (every permission) is left to Django."""
    if user.is_superuser or not user.is_active:
        return
    rows = (
        Permission.objects.filter(Q(user=user) | Q(group__user=user))
        .values_list("content_type__app_label", "codename")
        .distinct()
    )
    user._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
