"""Staff roles: the groups staff are put in, and the permissions each grants (least privilege).

Support reads customers (editing only their contact details) and handles tickets, and reads the emails sent (queue
items, tracking events, suppressions), the integrations' workflow runs and incoming webhook deliveries (why an invite
or a coupon did not arrive). Marketing edits automation rules, steps and templates, reads analytics, retries and
cancels emails, adds suppressions, builds segments, sends broadcasts, and takes the customer 360's email actions
(backoffice.staff_actions). Neither role has any dj-stripe permission: those tables are the owners' (superusers),
shown last in the admin (config/admin_site.py). Retrying a workflow run or reprocessing a delivery needs its change
permission, which no role has.
Superusers are for the owners. The groups are created by a data migration (customers 0002); their permissions are
(re)applied after every `migrate` by `roles_sync`, because Django creates a model's permissions only after the
migrations run, and later apps add models these roles should reach. A model that does not exist yet is skipped.
"""

import logging

logger = logging.getLogger(__name__)

SUPPORT = "Support"
MARKETING = "Marketing"
# The group of the users that API keys act as (api.ServiceAccountKey): tools such as the website and the server
# provisioning panel. They read the customer record, tickets and workflow runs, and may enroll a customer in a rule; a
# key that needs more gets a service account with another group.
SERVICE_ACCOUNTS = "Service accounts"

VIEW = ("view",)
EDIT = ("view", "add", "change", "delete")

ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # Answers customers: their record, tickets, and the emails sent to them, so "did you get my email?" has an answer
    # without asking Marketing.
    SUPPORT: {
        # change: the contact details only (email, name, Discord id); customers.admin makes the rest read-only. It is
        # also the customer page's "Correct email" action, which writes a Stripe customer's address to Stripe first.
        "customers.customer": ("view", "change"),
        "customers.timelineevent": VIEW,
        "customers.stagetransition": VIEW,
        "billing.subscription": VIEW,
        # The customer page's billing actions (billing/support_actions.py): send the card-update link, give a goodwill
        # credit (within BILLING_GOODWILL_CREDIT_LIMIT); read failed payments and card-expiry warnings.
        "billing.cardupdatelinksend": ("view", "add"),
        "billing.goodwillcredit": ("view", "add"),
        "billing.paymentfailure": VIEW,
        "billing.cardexpirynotice": VIEW,
        "billing.cancelsession": VIEW,
        "billing.subscriptionchange": VIEW,
        "support.ticket": ("view", "change"),
        "support.ticketmessage": VIEW,
        "support.ticketattachment": VIEW,
        "support.discordinteraction": VIEW,
        "support.savedreply": EDIT,
        "support.savedreplyuse": VIEW,
        "support.panelsuggestion": VIEW,
        "support.slatarget": VIEW,
        "support.slaalert": VIEW,
        "support.ticketresponse": VIEW,
        "support.categorystaffrole": VIEW,
        "automations.emailqueueitem": VIEW,
        "automations.emailevent": VIEW,
        "automations.suppression": VIEW,
        "integrations.workflowrun": VIEW,
        "integrations.workflowstep": VIEW,
        "integrations.inboundwebhook": VIEW,
        "devtools.outboxemail": VIEW,  # the local run's outbox (shown only where it is in use)
    },
    # Runs the email programme: rules, steps and templates, the analytics (which need view on queue items), retrying
    # and cancelling emails (change on queue items: EmailQueueItemAdmin.has_retry_permission), and suppressions.
    MARKETING: {
        "customers.customer": VIEW,
        "customers.timelineevent": VIEW,
        "customers.stagetransition": VIEW,
        "automations.emailtemplate": EDIT,
        "automations.automationrule": EDIT,
        "automations.automationstep": EDIT,
        # The customer 360's quick actions (customers.staff_actions.ACTIONS): enroll in / remove from a rule,
        # resend / cancel an email, lift a suppression, change consent (kept as a consent record).
        "automations.enrollment": ("view", "add", "change"),
        "automations.emailqueueitem": ("view", "change"),
        "automations.emailevent": VIEW,
        "automations.sendingpause": VIEW,
        "automations.suppression": ("view", "add", "delete"),
        "customers.consentrecord": ("view", "add"),
        # Segments (marketing/): built in the admin, each with its live count and a sample of customers.
        "marketing.segment": EDIT,
        "marketing.segmentcondition": EDIT,
        # Broadcasts: composed, tested, scheduled, sent, paused, resumed and cancelled by Marketing in the admin
        # (marketing/admin_broadcasts.py) and the API, through marketing/broadcasts.py; never deleted (their emails are
        # history: Cancel stops one), so no delete.
        "marketing.broadcast": ("view", "add", "change"),
        "marketing.broadcastvariant": VIEW,
        "marketing.broadcastrecipient": VIEW,
        "marketing.broadcastauditentry": VIEW,
        # Saved replies are written by Support and Marketing together (the public ones speak to customers).
        "support.savedreply": EDIT,
        "support.panelsuggestion": VIEW,
        "customers.topic": ("view", "add", "change"),
        "customers.topicsubscription": VIEW,
        # The cancel page's save offers, per reason, and what came of them.
        "billing.saveoffer": EDIT,
        "billing.cancelsession": VIEW,
        "integrations.workflowrun": VIEW,
        "integrations.workflowstep": VIEW,
        "devtools.outboxemail": VIEW,  # the local run's outbox (shown only where it is in use)
    },
    SERVICE_ACCOUNTS: {
        "customers.customer": VIEW,
        "customers.timelineevent": VIEW,
        "customers.stagetransition": VIEW,
        "billing.subscription": VIEW,
        # The provisioning panel's "cancel" button: a cancel session for the customer (billing/retention/api.py).
        "billing.cancelsession": ("view", "add"),
        "automations.automationrule": VIEW,
        "automations.enrollment": ("view", "add"),
        "automations.emailqueueitem": VIEW,
        "marketing.segment": VIEW,
        "marketing.broadcast": VIEW,
        "support.ticket": VIEW,
        "support.ticketmessage": VIEW,
        "support.ticketattachment": VIEW,
        "integrations.workflowrun": VIEW,
        "integrations.workflowstep": VIEW,
    },
}


def roles_sync(**kwargs) -> None:
    """Give each role exactly the permissions declared above (idempotent; connected to post_migrate)."""
    from django.contrib.auth.models import Group, Permission

    for role, models in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for model_label, actions in models.items():
            app_label, model = model_label.split(".")
            codenames = [f"{action}_{model}" for action in actions]
            found = list(Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
            if len(found) != len(codenames):
                logger.debug("Role %s: permissions for %s not all present yet", role, model_label)
            wanted.extend(found)
        group.permissions.set(wanted)
