"""Admin for marketing: rules with their steps, templates with a live preview, the queue, suppressions, analytics.

Thin classes: actions and views call services and selectors. Which staff role may do what is config/roles.py.

- `rules`: rules and their steps (delays in words, events by name, products by name), each rule's numbers.
- `analytics`: the analytics page's parameters and chart.
- `templates`: email templates and their preview.
- `queue`: enrollments, the queue (with each email as stored or sent), tracking events, batches, pauses, suppressions.
"""

from . import queue, rules, templates  # noqa: F401  (registers the admins)
