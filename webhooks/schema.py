"""The outbound webhooks in the OpenAPI schema (the `webhooks` section, OpenAPI 3.1): what a receiver gets.

Every message is a POST with the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
and the body `{type, timestamp, data}` built by `webhooks.services.message_body`. Answer any 2xx to acknowledge;
410 unsubscribes the endpoint.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiWebhook, extend_schema, inline_serializer
from rest_framework import serializers

from customers.lifecycle import Stage

HEADERS = [
    OpenApiParameter("webhook-id", str, OpenApiParameter.HEADER, required=True, description="Stable across retries."),
    OpenApiParameter(
        "webhook-timestamp", int, OpenApiParameter.HEADER, required=True, description="Unix seconds of this attempt."
    ),
    OpenApiParameter(
        "webhook-signature",
        str,
        OpenApiParameter.HEADER,
        required=True,
        description='"v1," + base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>" with the whsec_ secret.',
    ),
]


class WebhookCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    stripe_customer_id = serializers.CharField()
    discord_user_id = serializers.CharField()
    lifecycle_stage = serializers.ChoiceField(choices=Stage.choices)


class WebhookDataSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(
        help_text="Increases with each lifecycle change of this customer: ignore a message older than the last applied."
    )
    customer = WebhookCustomerSerializer()
    details = serializers.DictField(
        help_text="The domain event's payload: {from, to, cause} for stage changes; invoice and subscription ids, "
        "attempt count and next payment attempt for payment events; for subscription events subscription_id and "
        "product_id, with behavior and resumes_at (paused), paused_until (resumed), cancel_at, feedback and comment "
        "(cancellation_scheduled), from_price_id, to_price_id, amount, currency and interval (plan_changed)."
    )


def _webhook(event_type: str, description: str) -> OpenApiWebhook:
    body = inline_serializer(
        name=f"Webhook_{event_type.replace('.', '_')}",
        fields={
            "type": serializers.ChoiceField(choices=[(event_type, event_type)]),
            "timestamp": serializers.DateTimeField(),
            "data": WebhookDataSerializer(),
        },
    )
    return OpenApiWebhook(
        name=event_type,
        decorator=extend_schema(
            summary=event_type,
            description=description,
            request=body,
            parameters=HEADERS,
            responses={200: None, 410: None},
        ),
    )


PURCHASE = _webhook("customer.purchase", "The customer bought: activate their server.")
AT_RISK = _webhook("customer.at_risk", "A payment failed or a cancellation is scheduled.")
CHURNED = _webhook("customer.churned", "The subscription ended: suspend the server, keep the data.")
WIN_BACK = _webhook("customer.win_back", "A churned customer is being won back.")
PAYMENT_FAILED = _webhook("payment.failed", "A renewal payment failed (Stripe will retry).")
PAYMENT_RECOVERED = _webhook("payment.recovered", "A failed payment was paid after all.")
SUBSCRIPTION_PAUSED = _webhook(
    "subscription.paused",
    "Payments are paused until details.resumes_at (the customer chose a pause instead of canceling, or staff paused "
    "it): suspend the server and keep its data.",
)
SUBSCRIPTION_RESUMED = _webhook(
    "subscription.resumed", "The pause is over (at resumes_at, or earlier): start the server again."
)
SUBSCRIPTION_CANCELLATION_SCHEDULED = _webhook(
    "subscription.cancellation_scheduled",
    "The subscription ends at details.cancel_at (the period's end); the server runs until then. "
    "customer.churned follows when it ends.",
)
SUBSCRIPTION_PLAN_CHANGED = _webhook(
    "subscription.plan_changed", "The subscription moved to another price (details.to_price_id): resize the server."
)
