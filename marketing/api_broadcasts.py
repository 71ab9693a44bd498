"""REST resources of broadcasts (/api/v1/broadcasts/): list, create (with `Idempotency-Key`), the detail with its
figures, and the actions schedule, send, pause, resume and cancel. Reads here, writes through marketing.broadcasts;
an action the broadcast's status does not allow is a 409 with the reason. Routes: config/api_urls.py.
"""

from datetime import timedelta

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from api.pagination import IdCursorPagination
from api.schema import documents_page_size_errors
from automations.models import EmailTemplate, WhenHeld
from customers.models import Topic

from .broadcast_figures import broadcast_figures
from .broadcast_models import Broadcast
from .broadcasts import (
    BroadcastRefused,
    broadcast_cancel,
    broadcast_cap_override_set,
    broadcast_create,
    broadcast_pause,
    broadcast_resume,
    broadcast_schedule,
    broadcast_send_now,
)
from .models import Segment


class BroadcastConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "broadcast_refused"


def broadcast_list():
    return Broadcast.objects.select_related("topic", "segment", "winner").prefetch_related("variants__template")


class VariantSerializer(serializers.Serializer):
    label = serializers.CharField()
    template = serializers.IntegerField(source="template_id")
    template_name = serializers.CharField(source="template.name")
    subject = serializers.CharField(source="template.subject")


class BroadcastSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    segment_name = serializers.CharField(source="segment.name", read_only=True)
    variants = VariantSerializer(many=True, read_only=True)
    winner = serializers.CharField(source="winner.label", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Broadcast
        fields = [
            "id",
            "name",
            "status",
            "topic",
            "segment",
            "segment_name",
            "when_held",
            "ignore_frequency_cap",
            "frequency_cap_override_reason",
            "test_share_percent",
            "test_wait",
            "variants",
            "winner",
            "ab_note",
            "guard_note",
            "scheduled_at",
            "started_at",
            "test_ends_at",
            "finished_at",
            "audience_at_start",
            "queued_count",
            "created_at",
        ]


class FigureRowSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="The variant; empty for the totals.")
    template_name = serializers.CharField()
    winner = serializers.BooleanField()
    recipients = serializers.IntegerField()
    queued = serializers.IntegerField()
    deferred = serializers.IntegerField()
    held = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    human_opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    blocked = serializers.IntegerField()
    failed = serializers.IntegerField()
    unconfirmed = serializers.IntegerField()
    delivery_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True, help_text="Unique clicks per delivered email.")
    bounce_rate = serializers.FloatField(allow_null=True, help_text="Permanent bounces per sent email.")
    complaint_rate = serializers.FloatField(allow_null=True, help_text="Complaints per delivered email.")


class FiguresSerializer(serializers.Serializer):
    totals = FigureRowSerializer()
    variants = FigureRowSerializer(many=True)
    opens_caveat = serializers.CharField()


class BroadcastDetailSerializer(BroadcastSerializer):
    figures = serializers.SerializerMethodField()

    class Meta(BroadcastSerializer.Meta):
        fields = [*BroadcastSerializer.Meta.fields, "figures"]

    @extend_schema(responses=FiguresSerializer)
    def get_figures(self, broadcast) -> dict:
        return FiguresSerializer(broadcast_figures(broadcast=broadcast)).data


class BroadcastInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    topic = serializers.SlugRelatedField(slug_field="slug", queryset=Topic.objects.filter(archived=False))
    segment = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all())
    template = serializers.PrimaryKeyRelatedField(queryset=EmailTemplate.objects.all())
    subject_variants = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=3, required=False, default=list
    )
    variant_templates = serializers.PrimaryKeyRelatedField(
        queryset=EmailTemplate.objects.all(), many=True, required=False, default=list
    )
    when_held = serializers.ChoiceField(choices=WhenHeld.choices, default=WhenHeld.DEFER)
    test_share_percent = serializers.IntegerField(min_value=1, max_value=100, default=20)
    test_wait = serializers.DurationField(min_value=timedelta(minutes=1), default=timedelta(hours=4))
    ignore_frequency_cap = serializers.BooleanField(default=False)
    frequency_cap_override_reason = serializers.CharField(max_length=250, required=False, allow_blank=True, default="")


@documents_page_size_errors
class BroadcastViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Broadcasts, newest first, with their variants; the detail adds the figures (per variant and in total)."""

    queryset = broadcast_list()
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return broadcast_list()

    def get_serializer_class(self):
        return BroadcastDetailSerializer if self.action == "retrieve" else BroadcastSerializer

    @extend_schema(
        request=BroadcastInputSerializer,
        responses={201: BroadcastDetailSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
    )
    @idempotent
    def create(self, request):
        data = BroadcastInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        ignore = values.pop("ignore_frequency_cap")
        reason = values.pop("frequency_cap_override_reason")
        try:
            broadcast = broadcast_create(**values, created_by=request.user)
            if ignore:
                broadcast_cap_override_set(broadcast=broadcast, ignore=True, reason=reason, actor=request.user)
        except BroadcastRefused as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from None
        broadcast = broadcast_list().get(pk=broadcast.pk)
        return Response(BroadcastDetailSerializer(broadcast).data, status=status.HTTP_201_CREATED)


class ScheduleSerializer(serializers.Serializer):
    at = serializers.DateTimeField()


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


def _schedule(broadcast, request):
    data = ScheduleSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    broadcast_schedule(broadcast=broadcast, at=data.validated_data["at"], actor=request.user)


def _pause(broadcast, request):
    data = PauseSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    broadcast_pause(broadcast=broadcast, actor=request.user, reason=data.validated_data["reason"])


def _send(broadcast, request):
    broadcast_send_now(broadcast=broadcast, actor=request.user)


def _resume(broadcast, request):
    broadcast_resume(broadcast=broadcast, actor=request.user)


def _cancel(broadcast, request):
    broadcast_cancel(broadcast=broadcast, actor=request.user)


class BroadcastActionView(APIView):
    """POST .../schedule ({"at"}), .../send, .../pause ({"reason"}), .../resume, .../cancel. A 409 says why when the
    broadcast's status does not allow it (a second "send", a resume of a cancelled one)."""

    perform = staticmethod(_send)
    required_permissions = {"POST": ["marketing.change_broadcast"]}

    @idempotent
    def post(self, request, pk: int):
        broadcast = get_object_or_404(Broadcast.objects.only("pk"), pk=pk)
        try:
            self.perform(broadcast, request)
        except BroadcastRefused as exc:
            raise BroadcastConflict(str(exc)) from None
        return Response(BroadcastDetailSerializer(broadcast_list().get(pk=pk)).data)


def _action_view(perform, request_serializer, description: str) -> type[BroadcastActionView]:
    schema = extend_schema(
        request=request_serializer,
        responses={200: BroadcastDetailSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=description,
    )

    def post(self, request, pk: int):
        return BroadcastActionView.post(self, request, pk)

    name = f"Broadcast{perform.__name__.strip('_').title()}View"
    return type(name, (BroadcastActionView,), {"perform": staticmethod(perform), "post": schema(post)})


BroadcastScheduleView = _action_view(_schedule, ScheduleSerializer, "Schedule a draft broadcast (or move it).")
BroadcastSendView = _action_view(_send, None, "Start sending now.")
BroadcastPauseView = _action_view(_pause, PauseSerializer, "Hold every unsent email.")
BroadcastResumeView = _action_view(_resume, None, "Release the held emails and finish queuing.")
BroadcastCancelView = _action_view(_cancel, None, "Cancel every unsent email, for good.")
