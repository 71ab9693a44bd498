"""Demo data for a local run: 90 days of a small hosting business's history, played through the real services,
and an admin login.

A few hundred customers sign up, trial, subscribe, renew, fail to pay, recover, cancel and come back, each at their
own moment of the last 90 days. Their Stripe events go through billing's webhook path (against an in-process
stand-in for Stripe), enrollments follow from the domain events, emails go out through the email queue and Django's
email backend when they fall due, and Resend's tracking events come back for them: devtools/demo/player.py has
the details. Everything is written as of the moment it happened (devtools.clock.as_of).

Safe to run again: when demo customers are present the history is left as it is. The admin's password is kept in
var/ so the printed login stays the same between runs.
"""

import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import override_settings

from customers.models import Customer
from devtools import clock

DEMO_HOLDOUT_PERCENT = 25


class Command(BaseCommand):
    help = "Play 90 days of demo history through the real services and print an admin login (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--no-admin", action="store_true", help="Do not create or print the admin login.")
        parser.add_argument("--customers", type=int, default=300, help="How many customers the history has.")
        parser.add_argument("--days", type=int, default=90, help="How far back the history starts.")

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        # Demo customers and an admin whose password sits in a file have no place in a real deployment.
        if not settings.SEED_DEMO_ALLOWED:
            raise CommandError(
                f"seed_demo refuses to run with these settings ({settings.SETTINGS_MODULE}): it writes demo customers "
                "and an admin login. It is for the local run (config.settings.local) and tests only."
            )
        present = Customer.objects.filter(metadata__demo=True).count()
        if present:
            self.stdout.write(f"Demo history already present ({present} demo customers); left as it is.")
        else:
            self._play(customers=options["customers"], days=options["days"])
        if not options["no_admin"]:
            username, password = self._admin(options["admin_username"])
            self.stdout.write(self.style.SUCCESS(f"Admin login: {username} / {password}"))

    def _play(self, *, customers: int, days: int) -> None:
        from devtools.demo.journeys import cast
        from devtools.demo.player import InlineBroker, Player

        started = time.monotonic()
        today = clock.wall_clock().replace(microsecond=0)
        journeys = cast(count=customers, today=today, days=days)
        player = Player(today=today)
        # The demo's failed invoices play with a dunning holdout (billing/services/payment_failures.py), so the
        # dashboard's "emails against the holdout" has groups to compare; the setting itself is unchanged after.
        with override_settings(DUNNING_HOLDOUT_PERCENT=settings.DUNNING_HOLDOUT_PERCENT or DEMO_HOLDOUT_PERCENT):
            player.play(journeys, start=today - timedelta(days=days), progress=self._progress(started))
        self.stdout.write(
            f"Demo history: {customers} customers over {days} days, {player.stripe_events} Stripe events and "
            f"{player.tracking_events} email tracking events played in {time.monotonic() - started:.1f} s."
        )
        if self.verbosity > 1:
            for kind, seconds in sorted(player.seconds.items()):
                self.stdout.write(f"  {kind}: {seconds:.1f} s")
        for failure in InlineBroker.failures[:5]:
            self.stderr.write(f"A demo task failed: {failure}")

    def _progress(self, started: float):
        """One line every tenth of the history ("Demo history: day 27 of 90 (12 s)"), flushed as it is written."""
        shown: set[int] = set()

        def report(day: int, days: int) -> None:
            tenth = day * 10 // days
            if tenth in shown or self.verbosity < 1:
                return
            shown.add(tenth)
            self.stdout.write(f"Demo history: day {day} of {days} ({time.monotonic() - started:.0f} s)")
            self.stdout.flush()

        return report

    def _admin(self, username: str) -> tuple[str, str]:
        """The local admin: its password is generated once and kept in var/ (never a default password)."""
        path = settings.VAR_DIR / "admin-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        password = path.read_text().strip()
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first() or user_model(username=username)
        user.is_staff = user.is_superuser = True
        user.email = user.email or f"{username}@modready.example"
        user.set_password(password)
        user.save()
        return username, password
