"""The email backend of EMAIL_DELIVERY=disabled: every send is refused loudly, nothing is dropped in silence.

A deployment without Resend must not look as if it sent anything (the file backend would write the email to disk and
the caller would believe it went out). The email queue does not get this far: it holds its emails pending while
delivery is disabled (automations.drain.email_queue_process).
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend


class EmailDeliveryDisabled(ImproperlyConfigured):
    pass


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        if not email_messages:
            return 0
        if self.fail_silently:
            return 0
        raise EmailDeliveryDisabled("Email delivery is disabled (EMAIL_DELIVERY=disabled): nothing was sent.")
