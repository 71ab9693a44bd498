"""Dunning timed to Stripe's retries: the shipped Dunning rule's reminder moves to a day before Stripe's next payment
attempt, and its final notice to the moment Stripe stops retrying (automations.services.step_times).

Only an installed default that nobody edited is changed: the rule's steps must be exactly the ones 0002 shipped (order,
delay, anchor, template), and each template exactly as 0002 wrote it. Anything staff changed is left alone.
Written out here (not imported from app code) so this migration keeps doing the same thing whatever the app becomes.
"""

from datetime import timedelta

from django.db import migrations, models

RULE = "Dunning"
SHIPPED_STEPS = [
    (1, timedelta(0), "enrollment", "Dunning 1 - payment failed"),
    (2, timedelta(days=3), "enrollment", "Dunning 2 - reminder"),
    (3, timedelta(days=7), "enrollment", "Dunning 3 - final notice"),
]
NEW_STEPS = {
    2: (timedelta(days=1), "before_next_payment_attempt"),
    3: (timedelta(0), "retries_exhausted"),
}
OLD_FINAL = "Unless it is paid, the subscription ends at the final retry and the server is stopped."
NEW_FINAL = "Our last automatic retry failed too: unless the open invoice is paid, the server is stopped."
TEMPLATE_CHANGES = {
    "Dunning 2 - reminder": {
        "description": (
            "Three days after a failed payment, if it has not recovered.",
            "A day before Stripe retries a failed payment.",
        ),
    },
    "Dunning 3 - final notice": {
        "description": (
            "Seven days after a failed payment: last reminder before the subscription ends.",
            "When Stripe has stopped retrying a failed payment: the last notice before the server is stopped.",
        ),
    },
}


def _shipped_template(name: str) -> dict:
    from importlib import import_module

    shipped = import_module("automations.migrations.0002_default_flows")
    data = next(template for template in shipped.TEMPLATES if template["name"] == name)
    return {
        key: value.strip() + ("\n" if key.endswith("_body") else "")
        for key, value in data.items()
        if key != "name" and isinstance(value, str)
    }


def _unedited(template, name: str) -> bool:
    shipped = _shipped_template(name)
    return all(getattr(template, key) == value for key, value in shipped.items())


def time_dunning_to_stripe(apps, schema_editor):
    AutomationRule = apps.get_model("automations", "AutomationRule")
    EmailTemplate = apps.get_model("automations", "EmailTemplate")
    rule = AutomationRule.objects.filter(name=RULE, trigger="payment.failed").first()
    if rule is None:
        return
    steps = list(rule.steps.select_related("template").order_by("order"))
    installed = [(step.order, step.delay, step.anchor, step.template.name) for step in steps]
    if installed != SHIPPED_STEPS:
        return  # staff changed the sequence: theirs to keep
    for step in steps:
        if step.order in NEW_STEPS:
            step.delay, step.anchor = NEW_STEPS[step.order]
            step.save(update_fields=["delay", "anchor"])
    for name, changes in TEMPLATE_CHANGES.items():
        template = EmailTemplate.objects.filter(name=name).first()
        if template is None or not _unedited(template, name):
            continue
        for field, (old, new) in changes.items():
            if getattr(template, field) == old:
                setattr(template, field, new)
        template.html_body = template.html_body.replace(OLD_FINAL, NEW_FINAL)
        template.text_body = template.text_body.replace(OLD_FINAL, NEW_FINAL)
        template.save(update_fields=["description", "html_body", "text_body"])


class Migration(migrations.Migration):
    dependencies = [("automations", "0006_email_event_unlinked_index")]

    operations = [
        migrations.AlterField(
            model_name="automationrule",
            name="trigger",
            field=models.CharField(
                choices=[
                    (name, name)
                    for name in (
                        "subscription.created",
                        "subscription.updated",
                        "subscription.cancel_scheduled",
                        "subscription.canceled",
                        "subscription.trial_will_end",
                        "payment.failed",
                        "payment.recovered",
                        "payment.succeeded",
                        "dispute.opened",
                        "checkout.completed",
                        "customer.stage_changed",
                        "trial.started",
                        "customer.email_added",
                    )
                ],
                max_length=64,
            ),
        ),
        migrations.AlterField(
            model_name="automationstep",
            name="anchor",
            field=models.CharField(
                choices=[
                    ("enrollment", "after enrollment"),
                    ("previous_step", "after the previous step"),
                    ("next_payment_attempt", "after Stripe's next payment attempt"),
                    ("before_next_payment_attempt", "before Stripe's next payment attempt"),
                    ("retries_exhausted", "when Stripe stops retrying"),
                ],
                default="enrollment",
                max_length=30,
            ),
        ),
        migrations.RunPython(time_dunning_to_stripe, migrations.RunPython.noop),
    ]
