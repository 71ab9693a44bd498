"""Email sequences: templates, rules, steps, enrollments, the email queue and tracking events."""
