"""Staff accounts: the owners add Support and Marketing people (and other owners) from one form.

"Users → New staff member" (`/admin/staff/new/`) asks for a name, an email and a role. The account is created with
no usable password; the new member gets an email with a link to choose one (Django's password-reset token, valid for
`PASSWORD_RESET_TIMEOUT`), so nobody else ever knows their password. The email is required: it is where the
password link, "send me a test" and lockout notices go. The creation is written to the admin's history (LogEntry),
like any other admin change. Only a user who may add users and is a superuser may create an owner (superuser).
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .roles import MARKETING, SUPPORT

OWNER = "owner"
ROLE_CHOICES = [
    (SUPPORT, "Support: customers, tickets, the emails sent to customers"),
    (MARKETING, "Marketing: rules, templates, analytics, email actions"),
    (OWNER, "Owner: everything, including Stripe's tables and staff accounts (two-factor required)"),
]


class StaffMemberForm(forms.Form):
    name = forms.CharField(max_length=150, help_text="First and last name, as colleagues know them.")
    email = forms.EmailField(help_text="Their work email: the link to set a password goes there, and test emails.")
    role = forms.ChoiceField(choices=ROLE_CHOICES, widget=forms.RadioSelect)

    def __init__(self, *args, may_create_owner: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not may_create_owner:
            self.fields["role"].choices = [c for c in ROLE_CHOICES if c[0] != OWNER]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        user_model = get_user_model()
        if (
            user_model.objects.filter(email__iexact=email).exists()
            or user_model.objects.filter(username__iexact=email).exists()
        ):
            raise forms.ValidationError("A staff account with this email exists already.")
        return email


def staff_member_create(*, name: str, email: str, role: str, created_by) -> tuple:
    """Create the account and, after commit, email its password link. Returns (user, password_url)."""
    first, _, last = name.strip().partition(" ")
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model(username=email, email=email, first_name=first[:150], last_name=last.strip()[:150])
        user.is_staff = True
        user.is_superuser = role == OWNER
        user.set_unusable_password()
        user.save()
        if role != OWNER:
            user.groups.add(Group.objects.get(name=role))
        LogEntry.objects.log_actions(
            user_id=created_by.pk,
            queryset=[user],
            action_flag=ADDITION,
            change_message=f"New staff member ({dict(ROLE_CHOICES)[role].split(':')[0]}), added from the staff form.",
            single_object=True,
        )
        password_url = password_set_url(user)
        transaction.on_commit(lambda: _send_welcome(user=user, password_url=password_url, created_by=created_by))
    return user, password_url


def password_set_url(user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return settings.SITE_URL + reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})


def _send_welcome(*, user, password_url: str, created_by) -> None:
    hours = settings.PASSWORD_RESET_TIMEOUT // 3600
    inviter = created_by.get_full_name() or created_by.get_username()
    send_mail(
        subject="Your ModReady back-office account",
        message=(
            f"Hello {user.first_name or user.email},\n\n{inviter} added you to the ModReady back-office.\n"
            f"Choose your password here (the link works once, for {hours} hours):\n\n{password_url}\n\n"
            f"Then sign in at {settings.SITE_URL}{reverse('admin:login')} with your email address as the username.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


def staff_member_view(admin_site, request):
    user_model = get_user_model()
    if not request.user.has_perm(f"{user_model._meta.app_label}.add_{user_model._meta.model_name}"):
        raise PermissionDenied
    may_create_owner = request.user.is_superuser
    form = StaffMemberForm(request.POST or None, may_create_owner=may_create_owner)
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["role"] == OWNER and not may_create_owner:
            raise PermissionDenied
        try:
            user, _ = staff_member_create(created_by=request.user, **form.cleaned_data)
        except Exception as exc:  # the account exists; only the email failed: say so, the link can be re-sent
            messages.error(request, f"The account was created, but the email with the password link failed: {exc}")
            return redirect(reverse("admin:index"))
        messages.success(
            request,
            f"{user.get_full_name() or user.email} can now sign in: an email with a link to choose a password went "
            f"to {user.email} (valid for {settings.PASSWORD_RESET_TIMEOUT // 3600} hours).",
        )
        return redirect(reverse("admin:auth_user_change", args=[user.pk]))
    context = {
        **admin_site.each_context(request),
        "title": "New staff member",
        "form": form,
        "opts": user_model._meta,
    }
    return TemplateResponse(request, "admin/auth/user/staff_new.html", context)


class StaffUserForm(AdminUserCreationForm):
    """The stock "Add user" form, with the email it needs (test sends and password links go there)."""

    class Meta(AdminUserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True


class StaffUserAdmin(UserAdmin):
    add_form = StaffUserForm
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "usable_password", "password1", "password2")}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_superuser", "role_names")
    change_list_template = "admin/auth/user/staff_change_list.html"

    @admin.display(description="Roles")
    def role_names(self, obj) -> str:
        return ", ".join(group.name for group in obj.groups.all()) or ("Owner" if obj.is_superuser else "—")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def get_urls(self):
        return [
            path("new-staff-member/", self.admin_site.admin_view(self.new_staff_view), name="auth_user_staff_new"),
            *super().get_urls(),
        ]

    def new_staff_view(self, request):
        return staff_member_view(self.admin_site, request)


def register(site) -> None:
    user_model = get_user_model()
    if site.is_registered(user_model):
        site.unregister(user_model)
    site.register(user_model, StaffUserAdmin)
