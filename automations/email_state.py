"""What will become of an email, in the words staff read: the one definition of "blocked" and "paused".

An email can be waiting in the queue (pending) and still never go out: its address is suppressed (a hard bounce
stops payment emails too), or it is marketing and the customer gave no consent, or its rule is paused. The queue
decides this when it takes the email (`automations.batch_claim.batch_claim_new` calls `block_reason`); the customer
page, the queue list and the rule page call the same functions, so a screen never says "pending" about an email the
queue will refuse (docs/automations.md, "Blocked and paused emails").
"""

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Lower

from .models import (
    SUPPRESSES_TRANSACTIONAL,
    EmailQueueItem,
    QueueStatus,
    Suppression,
    SuppressionReason,
    TemplateCategory,
)

# Why a suppression blocks an address, as a support person would say it.
SUPPRESSION_WORDS = {
    SuppressionReason.HARD_BOUNCE: "the address hard-bounced (it does not exist or refuses our mail)",
    SuppressionReason.SOFT_BOUNCES: "emails to the address kept bouncing",
    SuppressionReason.COMPLAINT: "the customer marked one of our emails as spam",
    SuppressionReason.UNSUBSCRIBE: "the customer unsubscribed",
    SuppressionReason.MANUAL: "staff suppressed the address",
}
NO_CONSENT = "no marketing consent"


def block_reason(*, marketing: bool, opt_in_confirmed: bool, suppression_reasons: set[str]) -> str | None:
    """Why an email of this category cannot go to an address with these suppressions, or None when it can.

    Marketing needs consent and no suppression of any kind; a payment or account (transactional) email is stopped by
    bounces, complaints and staff suppressions, not by an unsubscribe."""
    if marketing:
        if not opt_in_confirmed:
            return f"Blocked: {NO_CONSENT}"
        blocking = set(suppression_reasons)
    else:
        blocking = set(suppression_reasons) & set(SUPPRESSES_TRANSACTIONAL)
    if not blocking:
        return None
    return "Blocked: " + "; ".join(SUPPRESSION_WORDS.get(reason, reason) for reason in sorted(blocking))


def item_block_reason(item: EmailQueueItem, suppression_reasons: set[str]) -> str | None:
    """`item` with its customer and step's template loaded; the reasons of its address's suppressions."""
    return block_reason(
        marketing=item.step.template.category == TemplateCategory.MARKETING,
        opt_in_confirmed=item.customer.opt_in_confirmed,
        suppression_reasons=suppression_reasons,
    )


@dataclass(frozen=True)
class ShownState:
    key: str  # pending, blocked, paused, sent, ... (the data-status of a row)
    label: str
    reason: str = ""


def shown_state(item: EmailQueueItem, suppression_reasons: set[str], *, rule_paused: bool = False) -> ShownState:
    """The status to show for an email. A pending email is shown as it will turn out: blocked (with why) or paused
    when the queue will not send it. A pending email goes to the customer's current address, so the suppressions are
    those of `item.customer.email`."""
    if item.status == QueueStatus.PENDING:
        reason = item_block_reason(item, suppression_reasons)
        if reason:
            return ShownState("blocked", "Blocked", _sentence(reason))
        if rule_paused:
            return ShownState("paused", "Paused", "Its rule is paused: it goes out when the rule is resumed.")
        return ShownState("pending", "Pending")
    if item.status == QueueStatus.SUPPRESSED:
        return ShownState("blocked", "Blocked", _sentence(item.last_error))
    if item.status == QueueStatus.PAUSED:
        return ShownState("paused", "Paused", "Its rule is paused: it goes out when the rule is resumed.")
    return ShownState(item.status, item.get_status_display(), item.last_error)


def _sentence(reason: str) -> str:
    why = reason.removeprefix("Blocked: ")
    return why[:1].upper() + why[1:]


def suppressions_by_address(addresses) -> dict[str, set[str]]:
    """The suppression reasons of each address (lower-case), in one query."""
    found: dict[str, set[str]] = {}
    wanted = {address.strip().lower() for address in addresses if address}
    for email, reason in Suppression.objects.filter(email__in=wanted).values_list("email", "reason"):
        found.setdefault(email, set()).add(reason)
    return found


def shown_states(items: list[EmailQueueItem]) -> dict[int, ShownState]:
    """Every item's shown state; items with customer, step template and enrollment's rule loaded. One query."""
    suppressions = suppressions_by_address(item.customer.email for item in items)
    return {
        item.pk: shown_state(
            item,
            suppressions.get(item.customer.email.lower(), set()),
            rule_paused=item.enrollment.rule.paused_at is not None,
        )
        for item in items
    }


def customers_marketing_allowed(*, customers):
    """The customers among `customers` (a queryset) a marketing email may go to now, by `block_reason`'s rule in SQL:
    an address, consent (`opt_in_confirmed`), and no suppression of any kind on the address. What a send to a segment
    starts from (marketing.audience); one query whatever the number of customers."""
    suppressed = Exists(Suppression.objects.filter(email=Lower(OuterRef("email"))))
    return customers.filter(opt_in_confirmed=True).exclude(email="").exclude(suppressed)


def blocked_pending_q(prefix: str = "") -> Q:
    """SQL for "pending, and the queue will refuse it" (counts on the rule page, the customer page and the queue
    list's filter). `prefix` reaches the queue item from another model ("queue_items__")."""
    customer_email = OuterRef(f"{prefix}customer__email")
    any_suppression = Exists(Suppression.objects.filter(email=customer_email))
    stops_everything = Exists(Suppression.objects.filter(email=customer_email, reason__in=SUPPRESSES_TRANSACTIONAL))
    marketing = Q(**{f"{prefix}step__template__category": TemplateCategory.MARKETING})
    return Q(**{f"{prefix}status": QueueStatus.PENDING}) & (
        Q(stops_everything) | (marketing & (Q(**{f"{prefix}customer__opt_in_confirmed": False}) | Q(any_suppression)))
    )


@dataclass(frozen=True)
class AddressVerdict:
    """What the customer page says about one customer's email: what goes out, what is held, and why."""

    marketing_reason: str | None
    transactional_reason: str | None

    @property
    def everything_blocked(self) -> bool:
        return self.transactional_reason is not None

    @property
    def lines(self) -> list[str]:
        if self.transactional_reason:
            why = self.transactional_reason.removeprefix("Blocked: ")
            return [
                f"All email is blocked, payment and account emails too: {why}.",
                "Payment reminders will not reach them: correct the address, or lift the suppression.",
            ]
        if self.marketing_reason:
            why = self.marketing_reason.removeprefix("Blocked: ")
            return [f"Marketing email is held: {why}.", "Payment and account emails go out."]
        return ["Marketing email goes out; payment and account emails go out."]


def address_verdict(*, email: str, opt_in_confirmed: bool, suppression_reasons: set[str]) -> AddressVerdict:
    if not email:
        return AddressVerdict("Blocked: no email address", "Blocked: no email address")
    return AddressVerdict(
        marketing_reason=block_reason(
            marketing=True, opt_in_confirmed=opt_in_confirmed, suppression_reasons=suppression_reasons
        ),
        transactional_reason=block_reason(
            marketing=False, opt_in_confirmed=opt_in_confirmed, suppression_reasons=suppression_reasons
        ),
    )


def unsent_per_step(*, rule_id: int) -> dict[int, dict[str, int]]:
    """A rule's emails not sent yet, per step id: waiting to go out, blocked (refused, or pending and going to be
    refused) and paused. One grouped query: the rule page's counts."""
    blocked = Q(status=QueueStatus.SUPPRESSED) | blocked_pending_q()
    paused = Q(status=QueueStatus.PAUSED) | Q(status=QueueStatus.PENDING, enrollment__rule__paused_at__isnull=False)
    rows = (
        EmailQueueItem.objects.filter(
            step__rule_id=rule_id,
            status__in=[QueueStatus.PENDING, QueueStatus.SENDING, QueueStatus.PAUSED, QueueStatus.SUPPRESSED],
        )
        .values("step_id")
        .annotate(
            blocked=Count("id", filter=blocked),
            paused=Count("id", filter=paused & ~blocked),
            waiting=Count("id", filter=Q(status__in=[QueueStatus.PENDING, QueueStatus.SENDING]) & ~blocked & ~paused),
        )
        .order_by()
    )
    return {row.pop("step_id"): row for row in rows}
