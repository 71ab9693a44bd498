"""POST /api/v1/cancel-sessions/: the provisioning panel's "cancel" button asks for a cancel session for a customer and
sends the customer to the answer's `url` (signed, valid BILLING_CANCEL_SESSION_MINUTES, for that one subscription).
GET /api/v1/cancel-sessions/<id>/: what happened in it (reason, offer, outcome, the Stripe change's status)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from customers.models import Customer

from ..models import CURRENT_STATUSES, Subscription
from .models import CancelSession
from .sessions import CancelSessionRefused, cancel_session_create, cancel_session_url


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class CancelSessionInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="The CRM customer id.")
    subscription = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The Stripe subscription id; needed only when the customer has more than one current subscription.",
    )


class CancelSessionSerializer(serializers.ModelSerializer):
    subscription = serializers.CharField(source="subscription.stripe_subscription_id", read_only=True)
    change_status = serializers.CharField(source="change.status", read_only=True, default="")

    class Meta:
        model = CancelSession
        fields = [
            "id",
            "customer",
            "subscription",
            "created_at",
            "expires_at",
            "holdout",
            "offer_eligible",
            "reason",
            "comment",
            "offer_kind",
            "offer_terms",
            "outcome",
            "decided_at",
            "change_status",
        ]


class CancelSessionCreatedSerializer(CancelSessionSerializer):
    url = serializers.SerializerMethodField(help_text="Send the customer here; it works for the session's lifetime.")

    class Meta(CancelSessionSerializer.Meta):
        fields = [*CancelSessionSerializer.Meta.fields, "url"]

    def get_url(self, session: CancelSession) -> str:
        return cancel_session_url(session=session)


def _subscription_for(customer: Customer, stripe_subscription_id: str | None) -> Subscription:
    current = Subscription.objects.filter(customer=customer, status__in=CURRENT_STATUSES)
    if stripe_subscription_id:
        found = Subscription.objects.filter(customer=customer, stripe_subscription_id=stripe_subscription_id).first()
        if found is None:
            raise serializers.ValidationError({"subscription": "This customer has no such subscription."})
        return found
    subscriptions = list(current[:2])
    if not subscriptions:
        raise Conflict("The customer has no current subscription to cancel.")
    if len(subscriptions) > 1:
        raise serializers.ValidationError({"subscription": "The customer has several subscriptions: name one."})
    return subscriptions[0]


class CancelSessionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = CancelSession.objects.select_related("subscription", "change")
    serializer_class = CancelSessionSerializer  # creating needs billing.add_cancelsession, reading view

    @extend_schema(
        request=CancelSessionInputSerializer,
        responses={201: CancelSessionCreatedSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
    )
    @idempotent
    def create(self, request):
        data = CancelSessionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = get_object_or_404(Customer, pk=data.validated_data["customer"])
        subscription = _subscription_for(customer, data.validated_data.get("subscription"))
        try:
            session = cancel_session_create(subscription=subscription, actor=request.user)
        except CancelSessionRefused as exc:
            raise Conflict(str(exc)) from None
        return Response(CancelSessionCreatedSerializer(session).data, status=status.HTTP_201_CREATED)
