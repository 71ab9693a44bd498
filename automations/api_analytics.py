"""REST resource of the email analytics (/api/v1/analytics/email/): the admin analytics page's selector
(`selectors.email_analytics`) over a period, with rates."""

from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.filters import (
    query_parameters_check,
)
from api.schema import documents_unknown_parameter_errors

from . import selectors

MAX_ANALYTICS_DAYS = 366


class AnalyticsQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (UTC); default 29 days before until.")
    until = serializers.DateField(required=False, help_text="Last day (UTC, included); default today.")
    rule = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


def analytics_period(*, since: date | None, until: date | None) -> tuple[date, date] | None:
    """The days to report: at most MAX_ANALYTICS_DAYS ending at `until` (a longer range is shortened, and the
    answer's `since` says so); None when since is after until (nothing to report)."""
    until = min(until or timezone.now().date(), date.max - timedelta(days=1))
    if since is None:
        since = until - timedelta(days=29) if until > date.min + timedelta(days=29) else date.min
    if since > until:
        return None
    if (until - since).days >= MAX_ANALYTICS_DAYS:
        since = until - timedelta(days=MAX_ANALYTICS_DAYS - 1)
    return since, until


class StatsSerializer(serializers.Serializer):
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    human_opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    delivery_rate = serializers.FloatField(allow_null=True)
    open_rate = serializers.FloatField(allow_null=True)
    human_open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)
    bounce_rate = serializers.FloatField(allow_null=True)


RATES = {
    "delivery_rate": "delivered",
    "open_rate": "opened",
    "human_open_rate": "human_opened",
    "click_rate": "clicked",
    "bounce_rate": "bounced",
}


def _stats(stats) -> dict:
    return {
        **{name: getattr(stats, name) for name in stats.__dataclass_fields__},
        **{rate: stats.rate(count) for rate, count in RATES.items()},
    }


class StepStatsSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    order = serializers.IntegerField()
    template = serializers.CharField()
    stats = StatsSerializer()


class RuleStatsSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    rule_name = serializers.CharField()
    stats = StatsSerializer()
    steps = StepStatsSerializer(many=True)


class DayStatsSerializer(serializers.Serializer):
    day = serializers.DateField()
    sends = serializers.IntegerField()
    unique_opens = serializers.IntegerField()
    unique_clicks = serializers.IntegerField()


class AnalyticsSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    total = StatsSerializer()
    rules = RuleStatsSerializer(many=True)
    days = DayStatsSerializer(many=True)


@extend_validation_errors(["invalid"], field_name="since")
@extend_validation_errors(["invalid"], field_name="until")
@extend_validation_errors(["invalid", "min_value", "max_value", "max_string_length"], field_name="rule")
@documents_unknown_parameter_errors
class EmailAnalyticsView(APIView):
    """Emails sent in a date range and what became of them, per rule and step: the admin analytics page's numbers,
    from the same selector (`automations.selectors.email_analytics`)."""

    required_permissions = {"GET": ["automations.view_automationrule", "automations.view_emailqueueitem"]}

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=AnalyticsSerializer)
    def get(self, request):
        query_parameters_check(request, {"format", *AnalyticsQuerySerializer().fields})
        # A plain dict: DRF would treat an empty `until=` from a QueryDict as absent instead of invalid.
        query = AnalyticsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        period = analytics_period(since=query.validated_data.get("since"), until=query.validated_data.get("until"))
        if period is None:
            empty = {name: 0 for name in StatsSerializer().fields if not name.endswith("_rate")}
            # Only a `since` after `until` (given, or today by default: a future `since` alone) gets here.
            data = {
                "since": query.validated_data["since"],
                "until": query.validated_data.get("until") or timezone.now().date(),
                "rules": [],
                "days": [],
            }
            return Response(AnalyticsSerializer({**data, "total": {**empty, **dict.fromkeys(RATES)}}).data)
        since_day, until_day = period
        since = datetime.combine(since_day, time.min, tzinfo=UTC)
        until = datetime.combine(until_day + timedelta(days=1), time.min, tzinfo=UTC)
        analytics = selectors.email_analytics(since=since, until=until, rule_id=query.validated_data.get("rule"))
        rules = []
        for row in analytics.rules:
            rules.append(
                {
                    "rule": row.steps[0].step.rule_id,
                    "rule_name": row.rule_name,
                    "stats": _stats(row.stats),
                    "steps": [
                        {
                            "step": step_row.step.pk,
                            "order": step_row.step.order,
                            "template": step_row.step.template.name,
                            "stats": _stats(step_row.stats),
                        }
                        for step_row in row.steps
                    ],
                }
            )
        data = {
            "since": since_day,
            "until": until_day,
            "total": _stats(analytics.total),
            "rules": rules,
            "days": [
                {"day": day, "sends": sends, "unique_opens": opens, "unique_clicks": clicks}
                for day, sends, opens, clicks in analytics.days
            ],
        }
        return Response(AnalyticsSerializer(data).data)
