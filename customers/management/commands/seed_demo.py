"""Demo data for a local run: a few customers along the journey, each with a timeline, and an admin login.

Safe to run again: customers are upserted by email, timeline events and stage moves are keyed, and the admin's
password is kept in var/ so the printed login stays the same between runs.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from customers import services
from customers.lifecycle import Stage

# (email, name, journey, marketing fields, timeline) — the journey is walked from discovery, one allowed move at a time.
DEMO_CUSTOMERS = [
    (
        "mia.lindqvist@example.com",
        "Mia Lindqvist",
        [Stage.TRIAL],
        {"opt_in_confirmed": True},
        [("trials", "trial.started", 2, "Free trial: Minecraft Java, 4 GB")],
    ),
    (
        "diego.ramos@example.com",
        "Diego Ramos",
        [Stage.TRIAL, Stage.PURCHASE, Stage.ONBOARDING],
        {"opt_in_confirmed": True},
        [
            ("trials", "trial.started", 9, "Free trial: Valheim"),
            ("stripe", "subscription.created", 1, "Subscribed to Pro Server (EUR 14.99 / month)"),
            ("email", "email.sent", 1, "Welcome to ModReady"),
        ],
    ),
    (
        "priya.nair@example.com",
        "Priya Nair",
        [Stage.PURCHASE, Stage.ONBOARDING, Stage.ACTIVE],
        {"opt_in_confirmed": True, "vip_status": True, "promo_code": "VIP-7Q2K-M4XD"},
        [
            ("stripe", "checkout.completed", 60, "VIP reservation purchased"),
            ("stripe", "subscription.created", 45, "Subscribed to Ultimate Server (EUR 29.99 / month)"),
            ("email", "email.opened", 44, "Opened: Welcome to ModReady"),
            ("support", "ticket.closed", 20, "Ticket #12 (setup) resolved: modpack install"),
        ],
    ),
    (
        "tom.becker@example.com",
        "Tom Becker",
        [Stage.PURCHASE, Stage.ACTIVE, Stage.AT_RISK],
        {},
        [
            ("stripe", "subscription.created", 120, "Subscribed to Starter Server (EUR 6.99 / month)"),
            ("stripe", "invoice.payment_failed", 2, "Payment failed (attempt 1); Stripe retries in 3 days"),
            ("email", "email.sent", 2, "Dunning: your payment did not go through"),
        ],
    ),
    (
        "lea.moreau@example.com",
        "Léa Moreau",
        [Stage.PURCHASE, Stage.ACTIVE, Stage.CHURNED],
        {"opt_in_confirmed": True},
        [
            ("stripe", "subscription.created", 200, "Subscribed to Pro Server (EUR 14.99 / month)"),
            ("stripe", "subscription.deleted", 5, "Canceled: too_expensive"),
        ],
    ),
    (
        "sam.okafor@example.com",
        "Sam Okafor",
        [Stage.PURCHASE, Stage.ACTIVE, Stage.CHURNED, Stage.WIN_BACK],
        {"opt_in_confirmed": True},
        [
            ("stripe", "subscription.created", 300, "Subscribed to Starter Server (EUR 6.99 / month)"),
            ("stripe", "subscription.deleted", 40, "Canceled: switched_service"),
            ("email", "email.clicked", 10, "Clicked: Your worlds are still here"),
        ],
    ),
    ("newcomer@example.com", "Alex Newcomer", [], {}, []),
]


class Command(BaseCommand):
    help = "Create demo customers with timelines and an admin login (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--no-admin", action="store_true", help="Do not create or print the admin login.")

    def handle(self, *args, **options):
        # Demo customers and an admin whose password sits in a file have no place in a real deployment.
        if not settings.SEED_DEMO_ALLOWED:
            raise CommandError(
                f"seed_demo refuses to run with these settings ({settings.SETTINGS_MODULE}): it writes demo customers "
                "and an admin login. It is for the local run (config.settings.local) and tests only."
            )
        now = timezone.now()
        with transaction.atomic():
            for email, name, journey, fields, timeline in DEMO_CUSTOMERS:
                customer, _ = services.customer_upsert(email=email, name=name, metadata={"demo": True}, **fields)
                for index, (source, kind, days_ago, summary) in enumerate(timeline):
                    services.timeline_event_record(
                        customer=customer,
                        source=source,
                        source_key=f"demo:{email}:{index}",
                        kind=kind,
                        summary=summary,
                        occurred_at=now - timedelta(days=days_ago, hours=index),
                    )
                steps = len(journey)
                for index, stage in enumerate(journey):
                    services.customer_move_stage(
                        customer=customer,
                        to_stage=stage,
                        cause="demo data",
                        source_key=f"demo:{email}:stage:{index}",
                        occurred_at=now - timedelta(days=3 * (steps - index)),
                    )
        self.stdout.write(f"{len(DEMO_CUSTOMERS)} demo customers ready.")
        if not options["no_admin"]:
            username, password = self._admin(options["admin_username"])
            self.stdout.write(self.style.SUCCESS(f"Admin login: {username} / {password}"))

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
