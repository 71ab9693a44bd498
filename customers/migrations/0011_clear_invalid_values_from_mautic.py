"""Values that came from Mautic unchecked before the edge checked them (issue 17: an email of "{'a': 1}", a
`javascript:` invite link) break the API's own schema. Invite links that are not Discord invite links are cleared; an
email that is not an address is moved into the customer's metadata (`invalid_email_from_mautic`) and left blank, so
the customer is still found by its Mautic contact id. Both are noted in the metadata for staff."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import migrations

INVITE_URL = re.compile(r"\Ahttps://(?:discord\.gg/|discord\.com/invite/)[A-Za-z0-9-]{2,64}\Z")
LINK_FIELDS = ("discord_invite_link_vip", "discord_invite_link_basic")


def _valid_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def clear_invalid_values(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    for customer in Customer.objects.only("pk", "email", "metadata", *LINK_FIELDS).iterator(chunk_size=2000):
        changed = []
        for field in LINK_FIELDS:
            value = getattr(customer, field)
            if value and not INVITE_URL.match(value):
                customer.metadata.setdefault("cleared_invalid_values", {})[field] = value[:500]
                setattr(customer, field, "")
                changed.append(field)
        if customer.email and not _valid_email(customer.email):
            customer.metadata["invalid_email_from_mautic"] = customer.email[:254]
            customer.email = ""
            changed.append("email")
        if changed:
            customer.save(update_fields=[*changed, "metadata"])


class Migration(migrations.Migration):
    dependencies = [("customers", "0010_customer_mautic_modified_at")]

    operations = [migrations.RunPython(clear_invalid_values, migrations.RunPython.noop)]
