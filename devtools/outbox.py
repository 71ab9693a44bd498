"""The email backend of the local run: every email goes into the local outbox (OutboxEmail), shown in the admin.

It stands in for Resend where config.settings.local has no RESEND_API_KEY. What arrives here is exactly what would
have been sent: the email queue sends one message per call through EMAIL_BACKEND locally (integrations.django_mail's
DjangoMailTransport), each under its idempotency key (`message.idempotency_key`, the same attribute the Resend
backend reads). A repeat under the same key stores nothing new and answers with the first email's message id, as
Resend does within its 24 hours (https://resend.com/docs/dashboard/emails/idempotency-keys); the unique constraint on
the key is what makes a second row impossible, also for two workers racing.
"""

from anymail.message import AnymailRecipientStatus, AnymailStatus
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction

BODY_HEADERS = {"content-type", "content-transfer-encoding", "mime-version"}


def _html(message) -> str:
    if getattr(message, "content_subtype", "") == "html":
        return message.body
    for content, mimetype in getattr(message, "alternatives", None) or []:
        if mimetype == "text/html":
            return content
    return ""


def _attachment(attachment) -> dict:
    if isinstance(attachment, tuple):  # (filename, content, mimetype)
        return {"filename": attachment[0], "mimetype": attachment[2]}
    return {"filename": attachment.get_filename(), "mimetype": attachment.get_content_type()}  # a MIME part


def _fields(message) -> dict:
    mime = message.message()
    headers = {name: str(value) for name, value in mime.items() if name.lower() not in BODY_HEADERS}
    html = _html(message)
    return {
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "subject": message.subject,
        "text": "" if getattr(message, "content_subtype", "") == "html" else message.body,
        "html": html,
        "headers": headers,
        "attachments": [_attachment(attachment) for attachment in message.attachments],
    }


def outbox_email_store(message):
    """Store one email (or find the one already stored under its idempotency key). Returns the row."""
    from .models import OutboxEmail

    key = getattr(message, "idempotency_key", None) or ""
    if key:
        existing = OutboxEmail.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            email = OutboxEmail.objects.create(idempotency_key=key, **_fields(message))
            email.message_id = f"outbox-{email.pk}"
            email.save(update_fields=["message_id"])
    except IntegrityError:
        if not key:
            raise
        return OutboxEmail.objects.get(idempotency_key=key)  # another worker stored it first
    return email


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        sent = 0
        for message in email_messages or []:
            if not message.recipients():
                continue
            try:
                email = outbox_email_store(message)
            except Exception:
                if not self.fail_silently:
                    raise
                continue
            status = AnymailStatus()
            status.set_recipient_status(
                {
                    address: AnymailRecipientStatus(message_id=email.message_id, status="sent")
                    for address in message.recipients()
                }
            )
            message.anymail_status = status  # read by integrations.django_mail, like anymail's own backends set it
            sent += 1
        return sent
