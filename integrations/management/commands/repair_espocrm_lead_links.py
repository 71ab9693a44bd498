from django.core.management.base import BaseCommand

from integrations.espocrm.lead_links import lead_links_repair


class Command(BaseCommand):
    help = (
        "Re-check every customer's EspoCRM lead against EspoCRM and relink the ones that point at another person's "
        "lead (finding or creating the customer's own). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")

    def handle(self, *args, dry_run=False, **options):
        report = lead_links_repair(dry_run=dry_run)
        for repair in report.repairs:
            self.stdout.write(("would relink " if dry_run else "relinked ") + str(repair))
        for reason in report.skipped:
            self.stdout.write(f"left as is: {reason}")
        verb = "would be relinked" if dry_run else "relinked"
        self.stdout.write(
            f"{report.checked} lead links checked: {report.kept} right, {len(report.repairs)} {verb}, "
            f"{len(report.skipped)} left as is."
        )
