"""/api/v1/: every resource, collected from the apps that own them (each app's `api.py`; the composed customer
resource from backoffice/api.py). Here, in config, because it imports every app: `api` holds only what the
resources share and imports none of them."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from automations import api as automations_api
from automations import api_analytics as automations_analytics_api
from backoffice import api as backoffice_api
from billing import api as billing_api
from billing.retention import api as retention_api
from customers import api as customers_api
from integrations import api as integrations_api
from marketing import api as marketing_api
from marketing import api_broadcasts as broadcasts_api
from support import api as support_api

router = SimpleRouter()
router.register("customers", backoffice_api.CustomerViewSet, basename="customer")
router.register("subscriptions", billing_api.SubscriptionViewSet, basename="subscription")
router.register("cancel-sessions", retention_api.CancelSessionViewSet, basename="cancel-session")
router.register("automation-rules", automations_api.RuleViewSet, basename="automation-rule")
router.register("email-queue-items", automations_api.QueueItemViewSet, basename="email-queue-item")
router.register("tickets", support_api.TicketViewSet, basename="ticket")
router.register("workflow-runs", integrations_api.WorkflowRunViewSet, basename="workflow-run")
router.register("segments", marketing_api.SegmentViewSet, basename="segment")
router.register("broadcasts", broadcasts_api.BroadcastViewSet, basename="broadcast")

urlpatterns = [
    *router.urls,
    path(
        "customers/<int:customer_id>/timeline/",
        customers_api.CustomerTimelineView.as_view(),
        name="customer-timeline",
    ),
    path(
        "customers/<int:customer_id>/stage-history/",
        customers_api.CustomerStageHistoryView.as_view(),
        name="customer-stage-history",
    ),
    path(
        "customers/<int:customer_id>/enrollments/",
        automations_api.CustomerEnrollmentsView.as_view(),
        name="customer-enrollments",
    ),
    path(
        "automation-rules/<int:pk>/enable/",
        automations_api.RuleEnabledView.as_view(enabled=True),
        name="automation-rule-enable",
    ),
    path(
        "automation-rules/<int:pk>/disable/",
        automations_api.RuleEnabledView.as_view(enabled=False),
        name="automation-rule-disable",
    ),
    path(
        "automation-rules/<int:pk>/enrollments/",
        automations_api.RuleEnrollView.as_view(),
        name="automation-rule-enroll",
    ),
    path(
        "email-queue-items/<int:pk>/retry/",
        automations_api.QueueItemActionView.as_view(action_name="retry"),
        name="email-queue-item-retry",
    ),
    path(
        "email-queue-items/<int:pk>/cancel/",
        automations_api.QueueItemActionView.as_view(action_name="cancel"),
        name="email-queue-item-cancel",
    ),
    path(
        "workflow-runs/<int:pk>/retry/",
        integrations_api.WorkflowRunRetryView.as_view(),
        name="workflow-run-retry",
    ),
    path("segments/<int:pk>/members/", marketing_api.SegmentMembersView.as_view(), name="segment-members"),
    path("broadcasts/<int:pk>/schedule/", broadcasts_api.BroadcastScheduleView.as_view(), name="broadcast-schedule"),
    path("broadcasts/<int:pk>/send/", broadcasts_api.BroadcastSendView.as_view(), name="broadcast-send"),
    path("broadcasts/<int:pk>/pause/", broadcasts_api.BroadcastPauseView.as_view(), name="broadcast-pause"),
    path("broadcasts/<int:pk>/resume/", broadcasts_api.BroadcastResumeView.as_view(), name="broadcast-resume"),
    path("broadcasts/<int:pk>/cancel/", broadcasts_api.BroadcastCancelView.as_view(), name="broadcast-cancel"),
    path("analytics/email/", automations_analytics_api.EmailAnalyticsView.as_view(), name="email-analytics"),
]
