"""The back-office admin site: Django's admin plus TOTP two-factor (django-otp) on top of axes' login lockout.

- A staff member with a confirmed TOTP device gives its 6-digit code at login, and a session that was not verified
  by a device (a password-only login from before the device existed) does not reach the admin.
- With `ADMIN_OTP_REQUIRED_FOR_SUPERUSERS` (on in production), a superuser without a device is sent to the setup page
  until they enrol one; every other staff member may enrol from the same page (user menu: "Two-factor").
- A wrong code counts as a failed login for axes, so guessing codes runs into the same lockout as guessing passwords;
  django-otp's own throttle (a growing delay per device) applies as well.
"""

import base64
from functools import wraps

import segno
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.safestring import mark_safe
from django.views import defaults
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.permissions import BasePermission

from core.client_address import FORWARDED_HEADER_IGNORED, forwarded_header_ignored_note
from core.two_factor import otp_enrollment_required, otp_satisfied

from .admin_query_guard import query_string_guarded
from .staff_sessions import user_sessions_end


class TwoFactorAuthenticationForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6-digit code from your authenticator app, if you have set up two-factor.",
    )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is None or not user_has_device(user):
            return cleaned
        token = (cleaned.get("otp_token") or "").strip()
        device = _verified_device(user, token) if token else None
        if device is None:
            # Counted by axes like a wrong password: guessing codes locks the account and the address out too.
            user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=self.request)
            if not token:
                message = "This account needs its code from the authenticator app."
            elif not any(d.verify_is_allowed()[0] for d in devices_for_user(user)):
                message = "Too many wrong codes: wait a few seconds, then enter the current one."
            else:
                message = "Enter the current code from your authenticator app."
            raise forms.ValidationError(message, code="otp_invalid")
        # django-otp's user_logged_in receiver stores the device in the session: the session is then verified.
        user.otp_device = device
        return cleaned


def _verified_device(user, token: str):
    with transaction.atomic():
        for device in devices_for_user(user, for_verify=True):
            if device.verify_token(token):
                return device
    return None


class OTPSetupForm(forms.Form):
    otp_token = forms.CharField(label="Code from your authenticator app", max_length=8)


STRIPE_INTERNALS = "djstripe"
# Menu names of the libraries' apps, in the words staff use (Django shows their labels, "OTP_TOTP", "AXES").
APP_NAMES = {
    "otp_totp": "Two-factor devices",
    "axes": "Login lockouts",
    "auth": "Staff accounts",
    "rest_framework_api_key": "API keys (library)",
    "django_q": "Background tasks",
}


class ModReadyAdminSite(admin.AdminSite):
    site_header = "ModReady back-office"
    site_title = "ModReady back-office"
    # "View site": this application has no public pages of its own (Django's default "/" answers 404). The API docs
    # are the one other staff page it serves, in every environment, and what the people wiring up tools look for.
    site_url = "/api/docs/"
    index_title = "Customer operations"
    login_form = TwoFactorAuthenticationForm
    login_template = "admin/two_factor_login.html"

    def has_permission(self, request):
        return super().has_permission(request) and otp_satisfied(request.user)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(query_string_guarded(view), cacheable)

        @wraps(view)
        def guarded(request, *args, **kwargs):
            user = request.user
            logging_out = request.path == reverse("admin:logout", current_app=self.name)
            if user.is_active and user.is_staff and otp_enrollment_required(user) and not logging_out:
                return redirect("admin:otp_setup")
            return inner(request, *args, **kwargs)

        return guarded

    def each_context(self, request):
        context = super().each_context(request)
        if forwarded_header_ignored_note(request) and request.user.is_active and request.user.is_staff:
            context["proxy_warning"] = FORWARDED_HEADER_IGNORED
        return context

    def get_urls(self):
        return [path("two-factor/", self.otp_setup_view, name="otp_setup"), *super().get_urls()]

    def index(self, request, extra_context=None):
        """The front page is the dashboard (backoffice/dashboard.py), with every page the user may open below it."""
        from backoffice.dashboard import dashboard_build, period_from

        board = dashboard_build(user=request.user, days=period_from(request.GET.get("days")), now=timezone.now())
        return super().index(request, {"title": "Dashboard", "dashboard": board, **(extra_context or {})})

    def get_app_list(self, request, app_label=None):
        """dj-stripe's mirror tables are for the owners: only superusers see them, in a group of their own at the
        bottom of the index and the sidebar, below the apps staff work in."""
        apps = super().get_app_list(request, app_label)
        stripe = [app for app in apps if app["app_label"] == STRIPE_INTERNALS]
        apps = [app for app in apps if app["app_label"] != STRIPE_INTERNALS]
        for app in apps:
            app["name"] = APP_NAMES.get(app["app_label"], app["name"])
        if request.user.is_superuser:
            for app in stripe:
                app["name"] = "Stripe internals (dj-stripe)"
            apps.extend(stripe)
        return apps

    @method_decorator(never_cache)
    def otp_setup_view(self, request):
        """Enrol a TOTP device: a new secret shown as a QR code and as text, confirmed by one code from the app.

        Open to any active staff member with a password session (not through admin_view: a superuser who must
        enrol would otherwise be sent here in a loop). A user who already has a confirmed device sees that it is
        set up; replacing it is done by a superuser deleting the device in the admin.
        """
        user = request.user
        if not (user.is_active and user.is_staff):
            return redirect(f"{reverse('admin:login', current_app=self.name)}?next={request.path}")
        confirmed = list(devices_for_user(user, confirmed=True))
        if confirmed:
            if not user.is_verified():
                # A device exists but this session never gave a code: log in again with it.
                return redirect(f"{reverse('admin:login', current_app=self.name)}?next={request.path}")
            return TemplateResponse(request, "admin/otp_setup.html", {**self.each_context(request), "enrolled": True})
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
        form = OTPSetupForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            allowed, _ = device.verify_is_allowed()
            if not allowed:
                # django-otp's throttle: each wrong code doubles the wait before the next one is checked.
                form.add_error("otp_token", "Too many wrong codes: wait a few seconds, then enter the current one.")
            elif device.verify_token(form.cleaned_data["otp_token"].strip()):
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                otp_login(request, device)
                # Sessions that logged in with the password alone (another browser, a stolen cookie) end here.
                user_sessions_end(user=user, keep_session_key=request.session.session_key)
                messages.success(
                    request,
                    "Two-factor is set up: the admin asks for a code at every login, and your other sessions "
                    "were logged out.",
                )
                return redirect("admin:index")
            else:
                form.add_error("otp_token", "That code does not match. Check the time on your phone and try again.")
        uri = device.config_url
        qr_svg = segno.make(uri, error="m").svg_inline(scale=4, border=2)
        context = {
            **self.each_context(request),
            "title": "Two-factor authentication",
            "enrolled": False,
            "form": form,
            "otpauth_uri": uri,
            "secret": base64.b32encode(device.bin_key).decode(),
            # segno builds the markup from the URI's bits; no user text is copied into it.
            "qr_svg": mark_safe(qr_svg),  # noqa: S308
            "required": otp_enrollment_required(user),
        }
        return TemplateResponse(request, "admin/otp_setup.html", context)


def permission_denied(request, exception=None):
    """handler403: inside the admin, a page with the admin's navigation saying what is not allowed and where to go;
    elsewhere Django's plain 403."""
    site = admin.site
    if request.path.startswith(reverse("admin:index")) and site.has_permission(request):
        context = {**site.each_context(request), "title": "You do not have access to this page"}
        return render(request, "admin/403.html", context, status=403)
    return defaults.permission_denied(request, exception)


class IsAdminSiteUser(BasePermission):
    """DRF permission: exactly who may use the admin (staff, second factor satisfied)."""

    def has_permission(self, request, view):
        return admin.site.has_permission(request)
