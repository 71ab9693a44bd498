from django.core.management.base import BaseCommand

from support.saved_reply_workflows import commands_register
from support.workflows import panel_publish


class Command(BaseCommand):
    help = (
        "Post the 'Open a ticket' panel in DISCORD_SUPPORT_CHANNEL_ID, or update the one posted before, and install "
        "the bot's slash commands (/reply) in DISCORD_GUILD_ID."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"Ticket panel {panel_publish()}.")
        names = ", ".join(f"/{name}" for name in commands_register())
        self.stdout.write(f"Slash commands installed: {names}.")
