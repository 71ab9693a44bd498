"""What staff read for a timeline entry's kind: "Payment failed", not `payment.failed`.

The kinds are written by the apps that record the entries (billing, automations, support, integrations, staff
actions); this table only words them for people. A kind not listed here is shown humanized from its code
("subscription.trial_will_end" -> "Subscription: trial will end"), so a new kind never shows raw. The code itself
stays available as a tooltip on the page, for whoever searches the logs.
"""

KIND_LABELS = {
    # billing
    "subscription.created": "Subscribed",
    "subscription.imported": "Subscription imported from Stripe",
    "subscription.status_changed": "Subscription status changed",
    "subscription.canceled": "Subscription ended",
    "subscription.cancel_scheduled": "Cancellation scheduled",
    "subscription.cancel_unscheduled": "Scheduled cancellation withdrawn",
    "subscription.trial_will_end": "Trial ends soon",
    "payment.failed": "Payment failed",
    "payment.succeeded": "Payment received",
    "payment.recovered": "Failed payment recovered",
    "checkout.completed": "Checkout completed",
    "dispute.opened": "Payment disputed",
    "trial.started": "Trial started",
    "card.expiring": "Card expires before the renewal",
    "card_update_link.requested": "Card-update link sent by staff",
    # customers
    "lifecycle.onboarding_settled": "Settled in (Onboarding to Active)",
    "lifecycle.campaign_ended": "Win-back campaign ended",
    "consent.topic_changed": "Email topic turned on or off",
    "consent.marketing_changed": "Marketing consent changed",
    # automations
    "email.sent": "Email sent",
    "email.delivered": "Email delivered",
    "email.opened": "Email opened",
    "email.clicked": "Email link clicked",
    "email.bounced": "Email bounced",
    "email.complained": "Marked as spam",
    "email.failed": "Email could not be sent",
    "email.suppressed": "Email held: address suppressed",
    "email.delivery_delayed": "Email delivery delayed",
    "email.unsubscribed": "Unsubscribed from marketing email",
    "automation.skipped_no_email": "Email skipped: no address on file",
    # support
    "support.ticket_opened": "Support ticket opened",
    "support.ticket_closed": "Support ticket closed",
    # staff on the ticket page (support/workspace.py)
    "support.ticket_claim": "Support ticket claimed",
    "support.ticket_unclaim": "Support ticket unclaimed",
    "support.ticket_transfer": "Support ticket transferred",
    "support.ticket_close": "Support ticket closed by staff",
    "support.ticket_close_request": "Asked to confirm a ticket's close",
    "support.ticket_reopen": "Support ticket reopened",
    "discord.linked": "Discord account linked",
    "discord.unlinked": "Discord account unlinked",
    # crowdfunding workflows
    "workflow.contact_invite.discord.invite": "Discord invite created",
    "workflow.contact_invite.mautic.invite_email": "Discord invite emailed",
    "workflow.vip_coupon.shopware.code": "VIP coupon created",
}

PREFIX_LABELS = {"staff": "Staff", "workflow": "Workflow", "email": "Email", "stripe": "Stripe"}


def timeline_kind_label(kind: str) -> str:
    if kind in KIND_LABELS:
        return KIND_LABELS[kind]
    head, _, rest = (kind or "").partition(".")
    if not rest:
        return (head or "—").replace("_", " ").capitalize()
    if head == "staff":
        from .models import StaffActionKind

        return dict(StaffActionKind.choices).get(rest, rest.replace("_", " ").capitalize())
    words = rest.replace(".", ": ").replace("_", " ")
    return f"{PREFIX_LABELS.get(head, head.replace('_', ' ').capitalize())}: {words}"
