"""Recompute the dashboard's payment recoveries from the timeline's payment.failed and payment.recovered facts
(billing/recoveries.py): after facts were written outside the billing services, e.g. by an import."""

from django.core.management.base import BaseCommand

from billing.recoveries import payment_recoveries_rebuild


class Command(BaseCommand):
    help = "Recompute the dashboard's payment recoveries from the timeline."

    def handle(self, *args, **options):
        rows = payment_recoveries_rebuild()
        self.stdout.write(f"Payment recoveries rebuilt: {rows} rows.")
