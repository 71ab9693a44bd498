"""Recompute the dashboard's daily roll-up of stage moves from StageTransition (customers/rollups.py): after
customers were deleted (their moves go, their counts stay) or moves were written outside customer_move_stage."""

from django.core.management.base import BaseCommand

from customers.rollups import stage_move_days_rebuild


class Command(BaseCommand):
    help = "Recompute the dashboard's daily roll-up of stage moves from the recorded moves."

    def handle(self, *args, **options):
        rows = stage_move_days_rebuild()
        self.stdout.write(f"Stage roll-up rebuilt: {rows} day rows.")
