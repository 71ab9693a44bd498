"""Factories for the REST API's callers: a confirmed TOTP device (two-factor for a staff session) and a service
account's API key (`ServiceAccountKeyFactory.create(...)` returns the row; the plain key is on `row.plain_key`)."""

import factory
from django_otp.plugins.otp_totp.models import TOTPDevice

from api.models import ServiceAccountKey


class TOTPDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TOTPDevice

    name = "phone"
    confirmed = True


class ServiceAccountKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceAccountKey

    name = factory.Sequence(lambda n: f"panel-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        row, key = model_class.objects.create_key(**kwargs)
        row.plain_key = key
        return row
