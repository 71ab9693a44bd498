"""The email backend of EMAIL_DELIVERY=disabled refuses to send instead of pretending to."""

import pytest
from django.core import mail

from integrations.email_disabled import EmailDeliveryDisabled


def test_sending_with_delivery_disabled_is_an_error_not_a_silent_success(settings):
    settings.EMAIL_BACKEND = "integrations.email_disabled.EmailBackend"
    with pytest.raises(EmailDeliveryDisabled, match="EMAIL_DELIVERY=disabled"):
        mail.send_mail("Subject", "Body", "hello@modready.example", ["staff@modready.example"])
    assert mail.send_mail("Subject", "Body", "a@modready.example", ["b@modready.example"], fail_silently=True) == 0
