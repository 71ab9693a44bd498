"""The card-update link in the dunning emails, wording that follows the decline, and two new transactional emails.

1. The shipped dunning templates link `card_update_url` (our signed link that opens Stripe's card form for the
   customer: billing/card_update.py) and word the email after the decline (`decline.kind`: a soft decline says when
   Stripe retries, a hard one asks for a new card, "authentication_required" asks to confirm the payment on the
   invoice page). Only a template whose HTML and text bodies are still exactly as shipped (0002, as 0007 left them)
   is changed; any template staff edited is left as it is and named in migrate's output, for Marketing to add the
   link by hand. Reversing puts the shipped bodies back, again only where they are unchanged since.
2. Two templates and rules: "Card expiring" (trigger card.expiring: the card a subscription renews with expires
   before the renewal; billing/card_expiry.py) and "Card-update link" (trigger card_update_link.requested: Support
   sent the link from the customer page). Created when no template or rule of that name exists; reversing deletes
   the ones that never sent anything.

Written out here, not imported from app code, so this migration keeps doing the same thing whatever the app becomes.
"""

import sys
from datetime import timedelta
from importlib import import_module

from django.db import migrations, models

BUTTON = "background:{color};color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;"
LINKS = """
{% set card_link = card_update_url or event.get("hosted_invoice_url") or billing_url %}
{% set invoice_link = event.get("hosted_invoice_url") or billing_url %}"""
AMOUNT = '{% if event.get("amount_due") %} ({{ event.amount_due|money(event.get("currency") or "usd") }}){% endif %}'


def _html_actions(color: str, soft_line: str) -> str:
    button = BUTTON.format(color=color)
    return f"""{{% if decline.kind == "authentication_required" %}}
<p>Your bank wants you to confirm this payment yourself (a security check such as 3D Secure). Open the invoice and confirm it: it takes a minute.</p>
<p style="margin:28px 0;"><a href="{{{{ invoice_link }}}}" style="{button}">Confirm the payment</a></p>
<p>Rather pay with another card? <a href="{{{{ card_link }}}}">Update your card</a>.</p>
{{% elif decline.kind == "hard" %}}
<p>This card cannot be charged again, so trying it again will not help. Please add a new card: we then retry the payment automatically.</p>
<p style="margin:28px 0;"><a href="{{{{ card_link }}}}" style="{button}">Add a new card</a></p>
{{% else %}}
<p>{soft_line}</p>
<p style="margin:28px 0;"><a href="{{{{ card_link }}}}" style="{button}">Update my card</a></p>
{{% endif %}}"""


def _text_actions(soft_line: str) -> str:
    return f"""{{% if decline.kind == "authentication_required" %}}
Your bank wants you to confirm this payment yourself (a security check such as 3D Secure). Open the invoice and confirm it: it takes a minute.

Confirm the payment: {{{{ invoice_link }}}}

Rather pay with another card? Update your card: {{{{ card_link }}}}
{{% elif decline.kind == "hard" %}}
This card cannot be charged again, so trying it again will not help. Please add a new card: we then retry the payment automatically.

Add a new card: {{{{ card_link }}}}
{{% else %}}
{soft_line}

Update my card: {{{{ card_link }}}}
{{% endif %}}"""


SOFT_RETRY = (
    "{% if next_retry_at %}We will try the payment again on {{ next_retry_at|date }}: if the money is there by then, "
    "there is nothing for you to do. {% endif %}To pay with another card, update it here."
)
SOFT_FINAL = "Our last automatic retry failed too. Update your card and we take the payment straight away."
SERVER = '{% set server = subscription.product_name if subscription and subscription.product_name else "your server" %}'


def _final_html() -> str:
    button = BUTTON.format(color="#dc2626")
    return f"""{{% if decline.kind == "authentication_required" %}}
<p>Your bank wants you to confirm this payment yourself (a security check such as 3D Secure). Open the invoice and confirm it to keep your server.</p>
<p style="margin:28px 0;"><a href="{{{{ invoice_link }}}}" style="{button}">Confirm the payment</a></p>
<p>Rather pay with another card? <a href="{{{{ card_link }}}}">Update your card</a>, then pay the invoice.</p>
{{% else %}}
<p>{{% if decline.kind == "hard" %}}This card cannot be charged again. {{% endif %}}Add a card that works, then pay the open invoice to keep your server.</p>
<p style="margin:28px 0;"><a href="{{{{ card_link }}}}" style="{button}">Update my card</a></p>
<p>Card already updated? <a href="{{{{ invoice_link }}}}">Pay the open invoice</a>.</p>
{{% endif %}}"""


FINAL_TEXT = """{% if decline.kind == "authentication_required" %}
Your bank wants you to confirm this payment yourself (a security check such as 3D Secure). Open the invoice and confirm it to keep your server: {{ invoice_link }}

Rather pay with another card? Update your card, then pay the invoice: {{ card_link }}
{% else %}
{% if decline.kind == "hard" %}This card cannot be charged again. {% endif %}Add a card that works, then pay the open invoice to keep your server.

Update my card: {{ card_link }}

Card already updated? Pay the open invoice: {{ invoice_link }}
{% endif %}"""

REASON = '{% if decline.reason %}: {{ decline.reason }}{% endif %}'

NEW_BODIES = {
    "Dunning 1 - payment failed": {
        "html_body": SERVER
        + LINKS
        + f"""
<h1 style="font-size:22px;margin:0 0 16px 0;">Your payment didn't go through</h1>
<p>Hi {{{{ customer.first_name }}}}, we tried to renew {{{{ server }}}}{AMOUNT}, but the payment didn't go through{REASON}.</p>
{_html_actions("#16a34a", SOFT_RETRY)}
<p><strong>Your server and worlds are safe and still online.</strong></p>
<p>Questions about the charge? Open a billing ticket in our <a href="{{{{ discord_url }}}}">Discord</a>.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + LINKS
        + f"""
Hi {{{{ customer.first_name }}}},

We tried to renew {{{{ server }}}}{AMOUNT}, but the payment didn't go through{REASON}.

{_text_actions(SOFT_RETRY)}

Your server and worlds are safe and still online.

Questions about the charge? Open a billing ticket in our Discord: {{{{ discord_url }}}}

The ModReady team
""",
    },
    "Dunning 2 - reminder": {
        "html_body": SERVER
        + LINKS
        + f"""
<h1 style="font-size:22px;margin:0 0 16px 0;">Still having trouble with your payment?</h1>
<p>Hi {{{{ customer.first_name }}}}, the renewal for {{{{ server }}}} is still unpaid{REASON}.</p>
{_html_actions("#16a34a", SOFT_RETRY)}
<p>If money is tight this month, tell us in a <a href="{{{{ discord_url }}}}">Discord ticket</a> - we can often move you to a smaller plan so your world stays online.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + LINKS
        + f"""
Hi {{{{ customer.first_name }}}},

The renewal for {{{{ server }}}} is still unpaid{REASON}.

{_text_actions(SOFT_RETRY)}

If money is tight this month, tell us in a Discord ticket - we can often move you to a smaller plan so your world stays online: {{{{ discord_url }}}}

The ModReady team
""",
    },
    "Dunning 3 - final notice": {
        "html_body": SERVER
        + LINKS
        + f"""
<h1 style="font-size:22px;margin:0 0 16px 0;">Last reminder before we suspend {{{{ server }}}}</h1>
<p>Hi {{{{ customer.first_name }}}}, we still could not collect the payment for {{{{ server }}}}{REASON}. Our last automatic retry failed too: unless the open invoice is paid, the server is stopped.</p>
<p>We keep a backup of your worlds for 14 days after suspension, so nothing is deleted right away - but your players will not be able to join.</p>
{_final_html()}
<p>Already paid, or think this is a mistake? Open a billing ticket in our <a href="{{{{ discord_url }}}}">Discord</a> and we will sort it out.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + LINKS
        + f"""
Hi {{{{ customer.first_name }}}},

We still could not collect the payment for {{{{ server }}}}{REASON}. Our last automatic retry failed too: unless the open invoice is paid, the server is stopped.

We keep a backup of your worlds for 14 days after suspension, so nothing is deleted right away - but your players will not be able to join.

{FINAL_TEXT}

Already paid, or think this is a mistake? Open a billing ticket in our Discord: {{{{ discord_url }}}}

The ModReady team
""",
    },
}

NEW_TEMPLATES = [
    {
        "name": "Card expiring",
        "description": "The card a subscription renews with expires before the renewal: sent once per card.",
        "category": "transactional",
        "subject": "Your card expires before your next ModReady renewal",
        "preheader": "Update it now and your server renews without a hitch.",
        "html_body": SERVER
        + """
<h1 style="font-size:22px;margin:0 0 16px 0;">Your card expires soon</h1>
<p>Hi {{ customer.first_name }}, the {{ event.get("brand") or "card" }} ending in {{ event.get("last4") or "...." }} that pays for {{ server }} expires at the end of {{ event.get("exp_month") }}/{{ event.get("exp_year") }}, before the next renewal on {{ event.get("renewal_at")|date }}.</p>
<p>Update it now and the renewal goes through as usual. Nothing is charged when you update the card.</p>
<p style="margin:28px 0;"><a href="{{ card_update_url or billing_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Update my card</a></p>
<p>Questions? Open a billing ticket in our <a href="{{ discord_url }}">Discord</a>.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + """
Hi {{ customer.first_name }},

The {{ event.get("brand") or "card" }} ending in {{ event.get("last4") or "...." }} that pays for {{ server }} expires at the end of {{ event.get("exp_month") }}/{{ event.get("exp_year") }}, before the next renewal on {{ event.get("renewal_at")|date }}.

Update it now and the renewal goes through as usual. Nothing is charged when you update the card.

Update my card: {{ card_update_url or billing_url }}

Questions? Open a billing ticket in our Discord: {{ discord_url }}

The ModReady team
""",
    },
    {
        "name": "Card-update link",
        "description": "Sent when Support sends the customer their card-update link from the customer page.",
        "category": "transactional",
        "subject": "Your link to update your ModReady card",
        "preheader": "Opens Stripe's secure card form for your account.",
        "html_body": """
<h1 style="font-size:22px;margin:0 0 16px 0;">Update your card</h1>
<p>Hi {{ customer.first_name }}, here is your link to update the card that pays for your ModReady server. It opens Stripe's secure card form for your account; nothing is charged when you update the card.</p>
<p style="margin:28px 0;"><a href="{{ card_update_url or billing_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Update my card</a></p>
<p>The link works for 14 days. Questions? Answer in your Discord ticket: <a href="{{ discord_url }}">Discord</a>.</p>
<p>The ModReady team</p>
""",
        "text_body": """
Hi {{ customer.first_name }},

Here is your link to update the card that pays for your ModReady server. It opens Stripe's secure card form for your account; nothing is charged when you update the card.

Update my card: {{ card_update_url or billing_url }}

The link works for 14 days. Questions? Answer in your Discord ticket: {{ discord_url }}

The ModReady team
""",
    },
]
NEW_RULES = [
    {
        "name": "Card expiring",
        "description": "A card that expires before the renewal; not sent once the subscription is cancelled.",
        "trigger": "card.expiring",
        "exit_events": ["subscription.canceled", "subscription.cancel_scheduled"],
        "template": "Card expiring",
    },
    {
        "name": "Card-update link",
        "description": "Support sent the customer their card-update link (one email per staff action).",
        "trigger": "card_update_link.requested",
        "exit_events": [],
        "template": "Card-update link",
    },
]


def _normal(value: str) -> str:
    return value.strip() + "\n"


def _shipped_bodies(name: str) -> dict:
    """The bodies 0002 installed, as 0007 left them (the final notice's one sentence)."""
    shipped = import_module("automations.migrations.0002_default_flows")
    timed = import_module("automations.migrations.0007_dunning_timed_to_stripe")
    data = next(template for template in shipped.TEMPLATES if template["name"] == name)
    return {
        field: _normal(data[field]).replace(timed.OLD_FINAL, timed.NEW_FINAL) for field in ("html_body", "text_body")
    }


def _swap(apps, *, forwards: bool) -> list[str]:
    EmailTemplate = apps.get_model("automations", "EmailTemplate")
    left = []
    for name, new in NEW_BODIES.items():
        template = EmailTemplate.objects.filter(name=name).first()
        if template is None:
            continue
        shipped = _shipped_bodies(name)
        new = {field: _normal(value) for field, value in new.items()}
        before, after = (shipped, new) if forwards else (new, shipped)
        if all(getattr(template, field) == value for field, value in before.items()):
            for field, value in after.items():
                setattr(template, field, value)
            template.save(update_fields=list(after))
        elif forwards and "card_update_url" not in template.html_body + template.text_body:
            left.append(name)
    return left


def link_card_update(apps, schema_editor):
    left = _swap(apps, forwards=True)
    if left:
        sys.stdout.write(
            "\n  Dunning templates edited by staff were left as they are; add {{ card_update_url }} to them by hand: "
            + ", ".join(left)
            + "\n"
        )
    EmailTemplate = apps.get_model("automations", "EmailTemplate")
    AutomationRule = apps.get_model("automations", "AutomationRule")
    AutomationStep = apps.get_model("automations", "AutomationStep")
    for data in NEW_TEMPLATES:
        fields = {k: _normal(v) if k.endswith("_body") else v for k, v in data.items() if k != "name"}
        EmailTemplate.objects.get_or_create(name=data["name"], defaults=fields)
    for data in NEW_RULES:
        rule, created = AutomationRule.objects.get_or_create(
            name=data["name"],
            defaults={
                "description": data["description"],
                "trigger": data["trigger"],
                "reentry": "every_time",
                "exit_events": data["exit_events"],
                "enabled": True,
            },
        )
        if created:
            template = EmailTemplate.objects.get(name=data["template"])
            AutomationStep.objects.create(rule=rule, order=1, delay=timedelta(0), template=template)


def unlink_card_update(apps, schema_editor):
    _swap(apps, forwards=False)
    AutomationRule = apps.get_model("automations", "AutomationRule")
    AutomationStep = apps.get_model("automations", "AutomationStep")
    EmailTemplate = apps.get_model("automations", "EmailTemplate")
    Enrollment = apps.get_model("automations", "Enrollment")
    for data in NEW_RULES:
        rule = AutomationRule.objects.filter(name=data["name"], trigger=data["trigger"]).first()
        if rule is not None and not Enrollment.objects.filter(rule_id=rule.pk).exists():
            # Nothing was sent (no enrollment), so nothing refers to them: deleted without the collector, which
            # trips over other apps' historical models.
            AutomationStep.objects.filter(rule_id=rule.pk)._raw_delete(schema_editor.connection.alias)
            AutomationRule.objects.filter(pk=rule.pk)._raw_delete(schema_editor.connection.alias)
    for data in NEW_TEMPLATES:
        template = EmailTemplate.objects.filter(name=data["name"]).first()
        if template is not None and not AutomationStep.objects.filter(template_id=template.pk).exists():
            EmailTemplate.objects.filter(pk=template.pk)._raw_delete(schema_editor.connection.alias)


class Migration(migrations.Migration):

    dependencies = [
        ('automations', '0016_merge_topics_and_retention_triggers'),
    ]

    operations = [
        migrations.AlterField(
            model_name='automationrule',
            name='trigger',
            field=models.CharField(choices=[('subscription.created', 'subscription.created'), ('subscription.updated', 'subscription.updated'), ('subscription.cancel_scheduled', 'subscription.cancel_scheduled'), ('subscription.canceled', 'subscription.canceled'), ('subscription.trial_will_end', 'subscription.trial_will_end'), ('subscription.paused', 'subscription.paused'), ('subscription.resumed', 'subscription.resumed'), ('subscription.discount_applied', 'subscription.discount_applied'), ('subscription.plan_changed', 'subscription.plan_changed'), ('payment.failed', 'payment.failed'), ('payment.recovered', 'payment.recovered'), ('payment.succeeded', 'payment.succeeded'), ('dispute.opened', 'dispute.opened'), ('checkout.completed', 'checkout.completed'), ('customer.stage_changed', 'customer.stage_changed'), ('trial.started', 'trial.started'), ('customer.email_added', 'customer.email_added'), ('card.expiring', 'card.expiring'), ('card_update_link.requested', 'card_update_link.requested')], max_length=64),
        ),
        migrations.RunPython(link_card_update, unlink_card_update),
    ]
