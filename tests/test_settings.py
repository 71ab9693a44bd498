"""The settings a deployment depends on, checked the way a deployment loads them: in a fresh process."""

import os
import subprocess
import sys

import pytest

from devtools.fakes.resend import SIGNING_SECRET

PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
)


DEPLOYMENT_VARIABLES = {
    "DATABASE_URL",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "ALLOWED_HOSTS",
    "DEBUG",
    "SITE_URL",
    "RESEND_API_KEY",
    "RESEND_SIGNING_SECRET",
    "EMAIL_DELIVERY",
    "AUTOMATIONS_EMAIL_TRANSPORT",
}


def load(module: str, code: str = PRINT_SETTINGS, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_VARIABLES}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": module, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "SECRET_KEY": "x" * 60,
    "ALLOWED_HOSTS": "crm.modready.example",
    "DATABASE_URL": "postgres://u@127.0.0.1:5432/modready",
    "SITE_URL": "https://crm.modready.example",
    "RESEND_API_KEY": "re_live_key",
    "RESEND_SIGNING_SECRET": SIGNING_SECRET,
}
PRINT_EMAIL_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.EMAIL_DELIVERY, s.EMAIL_BACKEND, s.AUTOMATIONS_EMAIL_TRANSPORT, s.SITE_URL)"
)


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "SITE_URL", "RESEND_API_KEY", "RESEND_SIGNING_SECRET"]
)
def test_production_refuses_to_start_without_required_settings(missing):
    result = load("config.settings.production", **{k: v for k, v in PRODUCTION.items() if k != missing})
    assert result.returncode != 0
    assert f"The environment variable {missing} is required" in result.stderr


@pytest.mark.parametrize("hosts", ["*", "crm.modready.example,*"])
def test_production_refuses_a_wildcard_allowed_hosts(hosts):
    result = load("config.settings.production", **{**PRODUCTION, "ALLOWED_HOSTS": hosts})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must name this site's host names" in result.stderr


def test_production_never_runs_with_debug_even_when_asked():
    result = load("config.settings.production", **PRODUCTION, DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.postgresql", "True", "31536000"]


def test_production_requires_two_factor_for_superusers_even_when_the_environment_says_otherwise():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.ADMIN_OTP_REQUIRED_FOR_SUPERUSERS, s.SEED_DEMO_ALLOWED, "
        "'axes.middleware.AxesMiddleware' in s.MIDDLEWARE)"
    )
    result = load("config.settings.production", code, **PRODUCTION, ADMIN_OTP_REQUIRED_FOR_SUPERUSERS="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "True"]


def test_local_run_defaults_to_embedded_sqlite_with_debug_off(tmp_path):
    result = load("config.settings.local", MODREADY_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["False", "django.db.backends.sqlite3"]
    assert (tmp_path / "secret_key").exists()


def test_embedded_sqlite_is_shared_safely_between_web_and_scheduler(tmp_path):
    code = (
        "import django; django.setup(); from django.db import connection; c = connection.cursor(); "
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]); c.execute('PRAGMA busy_timeout'); "
        "print(c.fetchone()[0]); print(connection.settings_dict['OPTIONS']['transaction_mode'])"
    )
    clean = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.local", "MODREADY_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "20000", "IMMEDIATE"]


def test_production_sends_through_resend_with_links_to_the_public_site():
    result = load("config.settings.production", PRINT_EMAIL_SETTINGS, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "enabled",
        "integrations.resend.backend.EmailBackend",
        "resend",
        "https://crm.modready.example",
    ]


def test_production_without_resend_starts_only_when_email_delivery_is_disabled_explicitly():
    bare = {k: v for k, v in PRODUCTION.items() if k not in {"SITE_URL", "RESEND_API_KEY", "RESEND_SIGNING_SECRET"}}
    assert load("config.settings.production", PRINT_EMAIL_SETTINGS, **bare).returncode != 0

    result = load("config.settings.production", PRINT_EMAIL_SETTINGS, **bare, EMAIL_DELIVERY="disabled")
    assert result.returncode == 0, result.stderr
    # Not the file backend of the local run, which would "send" by writing files: every send is refused.
    assert result.stdout.split()[:2] == ["disabled", "integrations.email_disabled.EmailBackend"]


def test_disabled_delivery_wins_over_a_resend_key():
    result = load("config.settings.production", PRINT_EMAIL_SETTINGS, **PRODUCTION, EMAIL_DELIVERY="disabled")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["disabled", "integrations.email_disabled.EmailBackend", "django"]


def test_an_unknown_email_delivery_value_refuses_to_start():
    result = load("config.settings.production", PRINT_EMAIL_SETTINGS, **PRODUCTION, EMAIL_DELIVERY="off")
    assert result.returncode != 0
    assert "EMAIL_DELIVERY must be enabled or disabled" in result.stderr


def test_secret_key_fallbacks_come_from_the_environment():
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY_FALLBACKS)"
    result = load("config.settings.production", code, **PRODUCTION, SECRET_KEY_FALLBACKS="old-one, older-one")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['old-one', 'older-one']"


def test_discord_enabled_but_not_configured_refuses_to_start():
    result = load("config.settings.production", **PRODUCTION, DISCORD_ENABLED="1", DISCORD_APPLICATION_ID="1")
    assert result.returncode != 0
    assert "DISCORD_ENABLED is on but DISCORD_PUBLIC_KEY is empty" in result.stderr


# What .ci/run (step 5) sets for the deploy check: Resend with placeholder credentials, links to the public site.
CI_PRODUCTION = {
    "SECRET_KEY": "x" * 60,
    "ALLOWED_HOSTS": "crm.modready.example",
    "SITE_URL": "https://crm.modready.example",
    "RESEND_API_KEY": "re_ci_placeholder",
    "RESEND_SIGNING_SECRET": SIGNING_SECRET,
    "DATABASE_URL": "postgres://u@127.0.0.1:5432/modready",
}
# The production process as far as it goes without a request: settings, every app, the URL root with the admin.
PRINT_DEVTOOLS_PRESENCE = (
    "import sys, django; django.setup(); from django.conf import settings as s; from django.apps import apps; "
    "import config.urls; "
    "print('devtools' in s.INSTALLED_APPS, apps.is_installed('devtools'), 'devtools' in s.EMAIL_BACKEND, "
    "sorted(m for m in sys.modules if m == 'devtools' or m.startswith('devtools.')) or '-')"
)


@pytest.mark.parametrize("extra", [{}, {"EMAIL_DELIVERY": "disabled", "RESEND_API_KEY": ""}])
def test_production_does_not_install_or_import_devtools(extra):
    result = load("config.settings.production", PRINT_DEVTOOLS_PRESENCE, **{**CI_PRODUCTION, **extra})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False", "-"]


def test_the_local_run_test_and_bench_settings_install_devtools(tmp_path):
    code = "import django; django.setup(); from django.apps import apps; print(apps.is_installed('devtools'))"
    for module in ("config.settings.local", "config.settings.test", "config.settings.bench"):
        result = load(module, code, MODREADY_VAR_DIR=str(tmp_path))
        assert result.returncode == 0, (module, result.stderr)
        assert result.stdout.strip() == "True", module
