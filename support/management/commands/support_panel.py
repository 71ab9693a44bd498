from django.core.management.base import BaseCommand

from support.workflows import panel_publish


class Command(BaseCommand):
    help = "Post the 'Open a ticket' panel in DISCORD_SUPPORT_CHANNEL_ID, or update the one posted before."

    def handle(self, *args, **options):
        self.stdout.write(f"Ticket panel {panel_publish()}.")
