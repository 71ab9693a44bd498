"""Re-check every customer's stored EspoCRM lead link, and repair the ones that point at someone else's lead.

Before the client checked the email of a 409 duplicate answer, a contact who shared a name with another person (or,
without a name, the local part of the email, which was used as the last name) was linked to that person's lead and
got no lead of their own. `manage.py repair_espocrm_lead_links` runs this once after upgrading; it is safe to run
again (a second run finds every link right and changes nothing).

For each customer with a lead id: read the lead; if it holds the customer's email (case-insensitive), keep it.
Otherwise (another person's lead, or a lead deleted in EspoCRM) find the customer's own lead by email, or create it
without the duplicate check, and store that id. The other person's lead is never changed.
"""

import logging
from dataclasses import dataclass, field

from customers import services as customer_services
from customers.models import Customer

from .client import EspoCrmClient

logger = logging.getLogger(__name__)


@dataclass
class LeadLinkRepair:
    customer_id: int
    email: str
    old_lead_id: str
    new_lead_id: str
    why: str  # "the lead belongs to another address" / "the lead no longer exists"
    created: bool

    def __str__(self) -> str:
        made = "created" if self.created else "found"
        return (
            f"customer {self.customer_id} <{self.email}>: lead {self.old_lead_id} ({self.why}) -> "
            f"lead {self.new_lead_id or '?'} ({made})"
        )


@dataclass
class LeadLinkReport:
    checked: int = 0
    kept: int = 0
    repairs: list[LeadLinkRepair] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # customers left as they are, with the reason


def _split_name(name: str) -> tuple[str, str]:
    """Our one name field as EspoCRM's first and last name ("Ada King Lovelace" -> "Ada", "King Lovelace")."""
    parts = name.split(maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0]) if parts else ("", "")


def lead_links_repair(*, dry_run: bool = False, client: EspoCrmClient | None = None) -> LeadLinkReport:
    client = client or EspoCrmClient.from_settings()
    report = LeadLinkReport()
    customers = (
        Customer.objects.exclude(espocrm_lead_id="").order_by("pk").only("pk", "email", "name", "espocrm_lead_id")
    )
    for customer in customers.iterator(chunk_size=500):
        report.checked += 1
        if not customer.email:
            report.skipped.append(f"customer {customer.pk}: no email address to check lead {customer.espocrm_lead_id}")
            continue
        lead = client.lead_get(customer.espocrm_lead_id)
        if lead is not None and lead.has_email(customer.email):
            report.kept += 1
            continue
        why = "the lead no longer exists" if lead is None else "the lead belongs to another address"
        new_id, created = client.lead_find_by_email(customer.email), False
        if new_id is None and not dry_run:
            first, last = _split_name(customer.name)
            new_id, created = client.lead_create(
                email=customer.email,
                first_name=first,
                last_name=last,
                source="Campaign",
                description="Crowdfunding contact from Mautic (link repaired)",
            )
        elif new_id is None:
            created = True  # it would be created
        repair = LeadLinkRepair(customer.pk, customer.email, customer.espocrm_lead_id, new_id or "", why, created)
        if not dry_run:
            customer_services.customer_update(customer=customer, espocrm_lead_id=new_id)
            logger.warning("EspoCRM lead link repaired: %s", repair)
        report.repairs.append(repair)
    return report
