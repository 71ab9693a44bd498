"""What the REST API itself stores: service-account keys and the responses of idempotent writes.

The resources belong to their apps (`customers/api.py`, `billing/api.py`, `automations/api.py`); this app holds only
what every resource shares.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class ServiceAccountKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self):
        # The service account comes with the key: one query per authenticated request.
        return super().get_usable_keys().select_related("user")


class ServiceAccountKey(AbstractAPIKey):
    """A hashed, revocable API key for a tool (website, provisioning panel, script).

    djangorestframework-api-key stores only a hash and shows the key once in the admin. Each key acts as a service
    account user, so Django's model permissions (through the user's groups, e.g. "Service accounts") decide what
    the key may do, exactly as for staff.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="The service account this key acts as; its groups and permissions apply.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ServiceAccountKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class IdempotencyRecord(models.Model):
    """The first response to a write sent with an `Idempotency-Key` header, replayed to any retry of it.

    Unique per principal (the API key, or the staff user) and key: a retry that races the first request waits on
    the unique index and then finds the stored answer. `request_fingerprint` (method, path, body) tells a retry from
    a different request that reuses the key, which is refused.
    """

    principal = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="idempotency_record_unique_per_principal"),
        ]

    def __str__(self) -> str:
        return f"{self.principal}: {self.key}"
