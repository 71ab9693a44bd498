"""The default win-back templates linked to SITE_URL (this back-office) where they meant the public website.

Only text still exactly as shipped is changed; a template marketing has edited keeps its wording.
"""

from django.db import migrations


def link_to_website(apps, schema_editor):
    EmailTemplate = apps.get_model("automations", "EmailTemplate")
    for template in EmailTemplate.objects.filter(name__startswith="Win-back"):
        html = template.html_body.replace("{{ site_url }}", "{{ website_url }}")
        text = template.text_body.replace("{{ site_url }}", "{{ website_url }}")
        if (html, text) != (template.html_body, template.text_body):
            template.html_body, template.text_body = html, text
            template.save(update_fields=["html_body", "text_body"])


class Migration(migrations.Migration):
    dependencies = [("automations", "0004_provider_call_slot")]

    operations = [migrations.RunPython(link_to_website, migrations.RunPython.noop)]
