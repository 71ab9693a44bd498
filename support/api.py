"""REST resources of the support app: tickets and their transcripts (/api/v1/tickets/). Reads only: tickets change
through Discord and the admin's actions (`support.services`).

The detail carries the transcript as messages; an attachment shows its metadata and, when its bytes were kept, the
admin's download URL (an admin session is needed to follow it; the API never returns the bytes).
"""

import django_filters
from django.db.models import Q
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters, mixins, serializers, viewsets

from api.filters import ChoicesFilter, IdFilter, StrictBooleanFilter, StrictFilterSet, TextFilter, UtcDateTimeFilter
from api.pagination import IdCursorPagination
from api.schema import documents_page_size_errors

from .models import Ticket, TicketAttachment, TicketCategory, TicketMessage, TicketPriority, TicketStatus
from .selectors import ticket_detail_list, ticket_list


class TicketSerializer(serializers.ModelSerializer):
    customer_email = serializers.EmailField(source="customer.email", read_only=True, allow_null=True)
    customer_vip = serializers.BooleanField(source="customer.vip_status", read_only=True, allow_null=True)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "status",
            "category",
            "priority",
            "subject",
            "customer",
            "customer_email",
            "customer_vip",
            "customer_link",
            "discord_user_id",
            "discord_username",
            "contact_email",
            "outside_support_hours",
            "opened_at",
            "claimed_by_name",
            "claimed_at",
            "first_staff_response_at",
            "first_responder_name",
            "message_count",
            "last_message_at",
            "closed_at",
            "closed_by_name",
            "close_reason",
            "rating",
        ]


class TicketAttachmentSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="discord_attachment_id", help_text="Discord's attachment id.")
    download_url = serializers.SerializerMethodField(
        help_text="The admin's download link (needs an admin session); null when the file was too large to keep."
    )

    class Meta:
        model = TicketAttachment
        fields = ["id", "filename", "content_type", "size", "too_large", "download_url"]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, attachment: TicketAttachment) -> str | None:
        if attachment.too_large:
            return None
        path = reverse(
            "admin:support_ticket_attachment",
            args=[self.context["ticket_id"], attachment.discord_attachment_id],
        )
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class TicketMessageSerializer(serializers.ModelSerializer):
    attachments = serializers.SerializerMethodField()

    class Meta:
        model = TicketMessage
        fields = [
            "id",
            "discord_message_id",
            "author_id",
            "author_name",
            "author_is_bot",
            "sent_at",
            "content",
            "embeds",
            "attachments",
        ]

    @extend_schema_field(TicketAttachmentSerializer(many=True))
    def get_attachments(self, message: TicketMessage):
        context = {**self.context, "ticket_id": message.ticket_id}
        return TicketAttachmentSerializer(message.attachments.all(), many=True, context=context).data


class TicketDetailSerializer(TicketSerializer):
    messages = TicketMessageSerializer(many=True, read_only=True, help_text="The transcript, oldest first.")

    class Meta(TicketSerializer.Meta):
        fields = [
            *TicketSerializer.Meta.fields,
            "description",
            "suggested_category",
            "triage_reason",
            "rating_comment",
            "rated_at",
            "last_error",
            "last_error_at",
            "messages",
        ]


class TicketFilter(StrictFilterSet):
    status = ChoicesFilter(choices=TicketStatus.choices)
    category = ChoicesFilter(choices=TicketCategory.choices)
    priority = ChoicesFilter(choices=TicketPriority.choices)
    claimed_by = TextFilter(
        field_name="claimed_by_name", help_text="The name of the staff member who claimed it (exact)."
    )
    claimed = StrictBooleanFilter(method="filter_claimed", help_text="Claimed by a staff member, or not.")
    customer = IdFilter(field_name="customer_id")
    vip = StrictBooleanFilter(
        method="filter_vip", help_text="The customer is a VIP (false: not a VIP, or not linked to a customer)."
    )
    opened_since = UtcDateTimeFilter(field_name="opened_at", lookup_expr="gte")

    class Meta:
        model = Ticket
        fields = []

    def filter_claimed(self, queryset, name, value):
        return queryset.exclude(claimed_by_name="") if value else queryset.filter(claimed_by_name="")

    def filter_vip(self, queryset, name, value):
        if value:
            return queryset.filter(customer__vip_status=True)
        return queryset.filter(Q(customer__isnull=True) | Q(customer__vip_status=False))


@documents_page_size_errors
class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Support tickets, newest first; the detail has the transcript."""

    queryset = ticket_list()
    filterset_class = TicketFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["id"]
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return ticket_detail_list() if self.action == "retrieve" else ticket_list()

    def get_serializer_class(self):
        return TicketDetailSerializer if self.action == "retrieve" else TicketSerializer
