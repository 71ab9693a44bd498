"""Factories for support: tickets (a ticket still opening by default, as the channel button leaves it), their
messages and attachments."""

import factory
from django.utils import timezone

from support.models import Ticket, TicketAttachment, TicketMessage


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    discord_user_id = factory.Sequence(lambda n: f"17000000000{n:08d}")


class TicketMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketMessage

    ticket = factory.SubFactory(TicketFactory)
    discord_message_id = factory.Sequence(lambda n: f"18000000000{n:08d}")
    author_id = "1700000000000000001"
    author_name = "alex"
    sent_at = factory.LazyFunction(timezone.now)


class TicketAttachmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketAttachment

    message = factory.SubFactory(TicketMessageFactory)
    discord_attachment_id = factory.Sequence(lambda n: f"19000000000{n:08d}")
    filename = factory.Sequence(lambda n: f"file{n}.log")
