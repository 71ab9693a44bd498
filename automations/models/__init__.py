"""Email sequences: templates, rules, steps, enrollments, the email queue, send batches, tracking and suppressions.

Only `automations.services` (and the queue's batch_claim and batch_outcome) writes these tables. The flow and the
guarantees are described in docs/automations.md.
"""

from ..installation import Installation  # noqa: F401  (the installation id that namespaces the provider's keys)
from .flows import (  # noqa: F401  (Django finds an app's models in its models module)
    EVENT_CHOICES,
    STRIPE_RETRY_ANCHORS,
    AutomationRule,
    AutomationStep,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    ReentryPolicy,
    StepAnchor,
    TemplateCategory,
    WhenHeld,
)
from .queue import (  # noqa: F401  (Django finds an app's models in its models module)
    FINAL_QUEUE_STATUSES,
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    QueueStatus,
)
from .sending_control import (  # noqa: F401  (Django finds an app's models in its models module)
    DrainLease,
    ProviderCallSlot,
    QueueWake,
    SendingPause,
    StaffTestSend,
)
from .tracking import (  # noqa: F401  (Django finds an app's models in its models module)
    SOFT_BOUNCE_LIMIT,
    SOFT_BOUNCE_WINDOW,
    SUPPRESSES_TRANSACTIONAL,
    BounceType,
    EmailEvent,
    EmailEventType,
    Suppression,
    SuppressionReason,
)
