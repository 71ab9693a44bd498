"""The default flows, shipped as data marketing can edit: welcome, dunning and win-back, with their templates.

Written out here (not imported from app code) so this migration keeps doing the same thing whatever the app becomes.
Re-running is harmless: rows are created only when missing, and existing (possibly edited) rows are left alone.
"""

from datetime import timedelta

from django.db import migrations

SERVER = '{% set server = subscription.product_name if subscription and subscription.product_name else "your server" %}'

TEMPLATES = [
    {
        "name": "Welcome",
        "description": "Sent right after a new subscription starts.",
        "category": "transactional",
        "subject": "Welcome to ModReady, {{ customer.first_name }} - your server is ready",
        "preheader": "Your panel login, your first five minutes, and where to find help.",
        "html_body": SERVER
        + """
<h1 style="font-size:24px;margin:0 0 16px 0;">Welcome aboard, {{ customer.first_name }}!</h1>
<p>Thanks for choosing ModReady. <strong>{{ server }}</strong> is provisioned and waiting for you.</p>
{% if subscription and subscription.amount %}<p style="color:#6b7280;font-size:14px;">Plan: {{ subscription.amount|money(subscription.currency) }} per {{ subscription.interval or "month" }}{% if subscription.trial_end %}, free until {{ subscription.trial_end|date }}{% endif %}.</p>{% endif %}
<h2 style="font-size:18px;margin:24px 0 8px 0;">Your first five minutes</h2>
<ol style="padding-left:20px;">
  <li><strong>Log in to the panel</strong> with this email address and start your server.</li>
  <li><strong>Pick your game version or modpack</strong> (Vanilla, Paper, Forge, Fabric, or a CurseForge/Modrinth pack) under <em>Server type</em>.</li>
  <li><strong>Share the address</strong> shown on the dashboard with your friends and join.</li>
</ol>
<p style="margin:28px 0;"><a href="{{ panel_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Open my server panel</a></p>
<p>Stuck on anything? Our Discord is where the team and thousands of server owners hang out. Open a ticket in <a href="{{ discord_url }}">#support</a> and a real person will help you, usually within the hour.</p>
<p>Happy building,<br>The ModReady team</p>
""",
        "text_body": SERVER
        + """
Welcome aboard, {{ customer.first_name }}!

Thanks for choosing ModReady. {{ server }} is provisioned and waiting for you.
{% if subscription and subscription.amount %}Plan: {{ subscription.amount|money(subscription.currency) }} per {{ subscription.interval or "month" }}{% if subscription.trial_end %}, free until {{ subscription.trial_end|date }}{% endif %}.
{% endif %}

Your first five minutes:
1. Log in to the panel with this email address and start your server: {{ panel_url }}
2. Pick your game version or modpack (Vanilla, Paper, Forge, Fabric, or a CurseForge/Modrinth pack) under "Server type".
3. Share the address shown on the dashboard with your friends and join.

Stuck on anything? Open a ticket in #support on our Discord and a real person will help you, usually within the hour: {{ discord_url }}

Happy building,
The ModReady team
""",
    },
    {
        "name": "Setup tips",
        "description": "Sent a day after the welcome email.",
        "category": "transactional",
        "subject": "5 tips to get the most out of {{ subscription.product_name if subscription and subscription.product_name else 'your ModReady server' }}",
        "preheader": "Backups, modpacks, whitelists and a smoother server - in five minutes.",
        "html_body": SERVER
        + """
<h1 style="font-size:22px;margin:0 0 16px 0;">Five tips from the ModReady team</h1>
<p>Hi {{ customer.first_name }}, here is what experienced server owners set up in their first week on {{ server }}:</p>
<ol style="padding-left:20px;">
  <li><strong>Turn on automatic backups.</strong> Panel &rarr; Backups &rarr; schedule a daily backup. One click restores your world if a mod or a griefer breaks it.</li>
  <li><strong>Install modpacks in one click.</strong> Panel &rarr; Server type &rarr; search CurseForge or Modrinth. We match the loader and Java version for you.</li>
  <li><strong>Whitelist your friends.</strong> Type <code>/whitelist on</code> then <code>/whitelist add &lt;name&gt;</code> in the console so only your players get in.</li>
  <li><strong>Pre-generate your world.</strong> Chunky (Paper/Fabric) pre-generates terrain so exploring does not lag the server.</li>
  <li><strong>Give it the right amount of RAM.</strong> Heavy modpacks want 6-8 GB; if the panel shows memory near the limit, you can upgrade without losing anything.</li>
</ol>
<p style="margin:28px 0;"><a href="{{ panel_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Open my panel</a></p>
<p>Want a second pair of eyes on your config? Open a ticket in our <a href="{{ discord_url }}">Discord</a> - setup help is included with every plan.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + """
Hi {{ customer.first_name }}, here is what experienced server owners set up in their first week on {{ server }}:

1. Turn on automatic backups. Panel > Backups > schedule a daily backup. One click restores your world if a mod or a griefer breaks it.
2. Install modpacks in one click. Panel > Server type > search CurseForge or Modrinth. We match the loader and Java version for you.
3. Whitelist your friends. Type /whitelist on, then /whitelist add <name> in the console so only your players get in.
4. Pre-generate your world. Chunky (Paper/Fabric) pre-generates terrain so exploring does not lag the server.
5. Give it the right amount of RAM. Heavy modpacks want 6-8 GB; if the panel shows memory near the limit, you can upgrade without losing anything.

Panel: {{ panel_url }}
Want a second pair of eyes on your config? Open a ticket in our Discord - setup help is included with every plan: {{ discord_url }}

The ModReady team
""",
    },
    {
        "name": "Dunning 1 - payment failed",
        "description": "Sent when a renewal payment fails.",
        "category": "transactional",
        "subject": "Your ModReady payment didn't go through",
        "preheader": "Nothing is lost - update your card to keep your server online.",
        "html_body": SERVER
        + """
{% set pay_url = event.get("hosted_invoice_url") or billing_url %}
<h1 style="font-size:22px;margin:0 0 16px 0;">Your payment didn't go through</h1>
<p>Hi {{ customer.first_name }}, we tried to renew {{ server }}{% if event.get("amount_due") %} ({{ event.amount_due|money(event.get("currency") or "usd") }}){% endif %}, but your bank declined the payment. This happens - an expired card or a new card number are the usual reasons.</p>
<p><strong>Your server and worlds are safe and still online.</strong>{% if event.get("next_payment_attempt") %} We will try the payment again on {{ event.next_payment_attempt|date }}.{% endif %}</p>
<p style="margin:28px 0;"><a href="{{ pay_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Update payment method</a></p>
<p>Questions about the charge? Open a billing ticket in our <a href="{{ discord_url }}">Discord</a>.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + """
{% set pay_url = event.get("hosted_invoice_url") or billing_url %}
Hi {{ customer.first_name }},

We tried to renew {{ server }}{% if event.get("amount_due") %} ({{ event.amount_due|money(event.get("currency") or "usd") }}){% endif %}, but your bank declined the payment. This happens - an expired card or a new card number are the usual reasons.

Your server and worlds are safe and still online.{% if event.get("next_payment_attempt") %} We will try the payment again on {{ event.next_payment_attempt|date }}.{% endif %}

Update your payment method: {{ pay_url }}

Questions about the charge? Open a billing ticket in our Discord: {{ discord_url }}

The ModReady team
""",
    },
    {
        "name": "Dunning 2 - reminder",
        "description": "Three days after a failed payment, if it has not recovered.",
        "category": "transactional",
        "subject": "Reminder: {{ subscription.product_name if subscription and subscription.product_name else 'your server' }} needs a new payment method",
        "preheader": "A two-minute card update keeps your world online.",
        "html_body": SERVER
        + """
{% set pay_url = event.get("hosted_invoice_url") or billing_url %}
<h1 style="font-size:22px;margin:0 0 16px 0;">Still having trouble with your payment?</h1>
<p>Hi {{ customer.first_name }}, the renewal for {{ server }} is still unpaid. Updating your card takes about two minutes and we retry the payment automatically.</p>
<p style="margin:28px 0;"><a href="{{ pay_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Pay the open invoice</a></p>
<p>If money is tight this month, tell us in a <a href="{{ discord_url }}">Discord ticket</a> - we can often move you to a smaller plan so your world stays online.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + """
{% set pay_url = event.get("hosted_invoice_url") or billing_url %}
Hi {{ customer.first_name }},

The renewal for {{ server }} is still unpaid. Updating your card takes about two minutes and we retry the payment automatically.

Pay the open invoice: {{ pay_url }}

If money is tight this month, tell us in a Discord ticket - we can often move you to a smaller plan so your world stays online: {{ discord_url }}

The ModReady team
""",
    },
    {
        "name": "Dunning 3 - final notice",
        "description": "Seven days after a failed payment: last reminder before the subscription ends.",
        "category": "transactional",
        "subject": "Final notice: {{ subscription.product_name if subscription and subscription.product_name else 'your ModReady server' }} will be suspended",
        "preheader": "Pay now to keep your server; we keep backups for 14 days after suspension.",
        "html_body": SERVER
        + """
{% set pay_url = event.get("hosted_invoice_url") or billing_url %}
<h1 style="font-size:22px;margin:0 0 16px 0;">Last reminder before we suspend {{ server }}</h1>
<p>Hi {{ customer.first_name }}, we still could not collect the payment for {{ server }}. Unless it is paid, the subscription ends at the final retry and the server is stopped.</p>
<p>We keep a backup of your worlds for 14 days after suspension, so nothing is deleted right away - but your players will not be able to join.</p>
<p style="margin:28px 0;"><a href="{{ pay_url }}" style="background:#dc2626;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Pay now and keep my server</a></p>
<p>Already paid, or think this is a mistake? Open a billing ticket in our <a href="{{ discord_url }}">Discord</a> and we will sort it out.</p>
<p>The ModReady team</p>
""",
        "text_body": SERVER
        + """
{% set pay_url = event.get("hosted_invoice_url") or billing_url %}
Hi {{ customer.first_name }},

We still could not collect the payment for {{ server }}. Unless it is paid, the subscription ends at the final retry and the server is stopped.

We keep a backup of your worlds for 14 days after suspension, so nothing is deleted right away - but your players will not be able to join.

Pay now and keep your server: {{ pay_url }}

Already paid, or think this is a mistake? Open a billing ticket in our Discord: {{ discord_url }}

The ModReady team
""",
    },
    {
        "name": "Win-back 1 - we saved your world",
        "description": "Three days after a cancellation.",
        "category": "marketing",
        "subject": "Your world is saved, {{ customer.first_name }}",
        "preheader": "Come back within 14 days and pick up exactly where you left off.",
        "html_body": """
<h1 style="font-size:22px;margin:0 0 16px 0;">Your world is still here</h1>
<p>Hi {{ customer.first_name }}, sorry to see you go. We keep a backup of your server for 14 days after it ends, so if you restart within that time your builds, inventories and mods are exactly where you left them.</p>
{% if event.get("cancellation_reason") in ("too_expensive", "low_quality", "missing_features") %}<p>You told us something wasn't right. We read every answer - if you tell us more in a <a href="{{ discord_url }}">Discord ticket</a>, the team will look into it personally.</p>{% endif %}
<p style="margin:28px 0;"><a href="{{ website_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Restart my server</a></p>
<p>The ModReady team</p>
""",
        "text_body": """
Hi {{ customer.first_name }},

Sorry to see you go. We keep a backup of your server for 14 days after it ends, so if you restart within that time your builds, inventories and mods are exactly where you left them.
{% if event.get("cancellation_reason") in ("too_expensive", "low_quality", "missing_features") %}
You told us something wasn't right. We read every answer - if you tell us more in a Discord ticket, the team will look into it personally: {{ discord_url }}
{% endif %}

Restart your server: {{ website_url }}

The ModReady team
""",
    },
    {
        "name": "Win-back 2 - what's new",
        "description": "Two weeks after a cancellation.",
        "category": "marketing",
        "subject": "New at ModReady: faster servers and one-click modpacks",
        "preheader": "What changed since you left - and a hand with the move back.",
        "html_body": """
<h1 style="font-size:22px;margin:0 0 16px 0;">A lot has changed since you left</h1>
<p>Hi {{ customer.first_name }}, a quick update from the ModReady team:</p>
<ul style="padding-left:20px;">
  <li><strong>One-click modpacks</strong> from CurseForge and Modrinth, with the right loader and Java picked for you.</li>
  <li><strong>Daily automatic backups</strong> on every plan, restorable from the panel.</li>
  <li><strong>Free migration help:</strong> hosting somewhere else now? Send us your world in a Discord ticket and we move it for you.</li>
</ul>
<p style="margin:28px 0;"><a href="{{ website_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">See the plans</a></p>
<p>The ModReady team</p>
""",
        "text_body": """
Hi {{ customer.first_name }}, a quick update from the ModReady team:

- One-click modpacks from CurseForge and Modrinth, with the right loader and Java picked for you.
- Daily automatic backups on every plan, restorable from the panel.
- Free migration help: hosting somewhere else now? Send us your world in a Discord ticket and we move it for you: {{ discord_url }}

See the plans: {{ website_url }}

The ModReady team
""",
    },
    {
        "name": "Win-back 3 - come back offer",
        "description": "A month after a cancellation: the last win-back email.",
        "category": "marketing",
        "subject": "{{ customer.first_name }}, your first month back is on us",
        "preheader": "Open a Discord ticket with this email and we credit your first month.",
        "html_body": """
<h1 style="font-size:22px;margin:0 0 16px 0;">Come back and play - first month on us</h1>
<p>Hi {{ customer.first_name }}, it has been a month since your server stopped. If you and your friends want to play again, your first month back is free: start a new server, then open a ticket in our <a href="{{ discord_url }}">Discord</a> with this email address and we credit the month.</p>
<p style="margin:28px 0;"><a href="{{ website_url }}" style="background:#16a34a;color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;font-weight:600;">Start a server</a></p>
<p>This is the last email we send about it. Thanks for having played with us.</p>
<p>The ModReady team</p>
""",
        "text_body": """
Hi {{ customer.first_name }},

It has been a month since your server stopped. If you and your friends want to play again, your first month back is free: start a new server, then open a ticket in our Discord with this email address and we credit the month.

Start a server: {{ website_url }}
Discord: {{ discord_url }}

This is the last email we send about it. Thanks for having played with us.

The ModReady team
""",
    },
]

RULES = [
    {
        "name": "Welcome",
        "description": "Onboarding for every new subscription.",
        "trigger": "subscription.created",
        "reentry": "once_per_subscription",
        "exit_events": ["subscription.canceled"],
        "steps": [(1, timedelta(0), "Welcome"), (2, timedelta(hours=24), "Setup tips")],
    },
    {
        "name": "Dunning",
        "description": "Failed renewal payments; ends as soon as the payment recovers or the subscription ends.",
        "trigger": "payment.failed",
        "reentry": "every_time",
        "exit_events": ["payment.recovered", "subscription.canceled"],
        "steps": [
            (1, timedelta(0), "Dunning 1 - payment failed"),
            (2, timedelta(days=3), "Dunning 2 - reminder"),
            (3, timedelta(days=7), "Dunning 3 - final notice"),
        ],
    },
    {
        "name": "Win-back",
        "description": "After a cancellation; ends when the customer subscribes again.",
        "trigger": "subscription.canceled",
        "reentry": "once_per_subscription",
        "exit_events": ["subscription.created", "checkout.completed"],
        "steps": [
            (1, timedelta(days=3), "Win-back 1 - we saved your world"),
            (2, timedelta(days=14), "Win-back 2 - what's new"),
            (3, timedelta(days=30), "Win-back 3 - come back offer"),
        ],
    },
]


def create_defaults(apps, schema_editor):
    EmailTemplate = apps.get_model("automations", "EmailTemplate")
    AutomationRule = apps.get_model("automations", "AutomationRule")
    AutomationStep = apps.get_model("automations", "AutomationStep")
    templates = {}
    for data in TEMPLATES:
        fields = {key: value.strip() + ("\n" if key.endswith("_body") else "") if isinstance(value, str) else value for key, value in data.items() if key != "name"}
        templates[data["name"]], _ = EmailTemplate.objects.get_or_create(name=data["name"], defaults=fields)
    for data in RULES:
        rule, created = AutomationRule.objects.get_or_create(
            name=data["name"],
            defaults={
                "description": data["description"],
                "trigger": data["trigger"],
                "reentry": data["reentry"],
                "exit_events": data["exit_events"],
                "enabled": True,
            },
        )
        if created:
            for order, delay, template_name in data["steps"]:
                AutomationStep.objects.create(rule=rule, order=order, delay=delay, template=templates[template_name])


class Migration(migrations.Migration):
    dependencies = [("automations", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
